#include "engine/probes.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "core/memory.h"
#include "quant/weight.h"

namespace frugal::engine {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// f(begin, end, thread) over [0, n) on k's pool, or on the calling thread.
template <typename F>
void run_on_pool(const kernels::Kernels& k, int64_t n, F&& f) {
  if (k.pool() != nullptr) {
    k.pool()->parallel_for(n, 1, f);
  } else {
    f(int64_t{0}, n, 0);
  }
}

}  // namespace

Result<double> measure_read_bandwidth(const kernels::Kernels& k, const BandwidthOptions& options) {
  constexpr int64_t kChunkWords = int64_t{1} << 17;  // 1 MiB per work item
  const uint64_t bytes = std::max<uint64_t>(options.bytes / (kChunkWords * 8), 1) * kChunkWords * 8;
  MemoryStats stats;
  FRUGAL_ASSIGN_OR_RETURN(
      AlignedBuffer buf,
      AlignedBuffer::allocate(bytes, &stats, {.huge_pages = HugePages::kAlways}));
  std::memset(buf.data(), 1, bytes);  // fault every page in before timing
  const auto* p = buf.as<const uint64_t>();
  const int64_t n_chunks = static_cast<int64_t>(bytes / 8) / kChunkWords;
  std::vector<double> gbps;
  std::atomic<uint64_t> sink{0};
  for (int r = 0; r < std::max(options.repetitions, 1) + 1; ++r) {  // +1: warm-up
    const auto t0 = Clock::now();
    run_on_pool(k, n_chunks, [&](int64_t b, int64_t e, int) {
      for (int64_t c = b; c < e; ++c) {
        sink.fetch_or(k.read_stream(p + c * kChunkWords, kChunkWords), std::memory_order_relaxed);
      }
    });
    const double s = seconds_since(t0);
    if (r > 0) gbps.push_back(static_cast<double>(bytes) / s / 1e9);
  }
  if (sink.load() == 0) gbps.push_back(0);  // keeps the reads observable (the buffer is all 1s)
  return median(gbps);
}

double measure_fma_peak(const kernels::Kernels& k, int repetitions) {
  const int threads = k.pool() != nullptr ? k.pool()->n_threads() : 1;
  // Size one run to ~50 ms from a short calibration on this thread.
  int64_t iters = int64_t{1} << 16;
  const auto c0 = Clock::now();
  const uint64_t cal = k.fma_peak(iters);
  const double per_flop = seconds_since(c0) / static_cast<double>(std::max<uint64_t>(cal, 1));
  iters = std::max<int64_t>(iters, static_cast<int64_t>(0.05 / per_flop / (cal / iters)));
  std::vector<double> gflops;
  for (int r = 0; r < std::max(repetitions, 1); ++r) {
    std::atomic<uint64_t> flops{0};
    const auto t0 = Clock::now();
    run_on_pool(k, threads, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) flops.fetch_add(k.fma_peak(iters), std::memory_order_relaxed);
    });
    gflops.push_back(static_cast<double>(flops.load()) / seconds_since(t0) / 1e9);
  }
  return median(gflops);
}

Result<double> measure_gemv(const kernels::Kernels& k, const GemvProbeOptions& o) {
  using quant::WeightFormat;
  if (o.rows <= 0 || o.cols <= 0) return invalid_argument("GEMV probe: empty matrix");
  const uint64_t db = quant::weight_data_bytes(o.format, o.rows, o.cols);
  const uint64_t sb = quant::weight_scale_bytes(o.format, o.rows, o.cols);
  const uint64_t each = (db + sb + 63) / 64 * 64;  // matrix then its scales, 64-byte aligned
  const uint64_t count = std::max<uint64_t>(o.ring_bytes / each + 1, 2);
  MemoryStats stats;
  FRUGAL_ASSIGN_OR_RETURN(
      AlignedBuffer ring,
      AlignedBuffer::allocate(each * count, &stats, {.huge_pages = HugePages::kAlways}));
  uint8_t* base = ring.as<uint8_t>();
  uint64_t s = 0x9e3779b97f4a7c15ull;  // xorshift64: values do not change the kernels' speed
  auto next = [&s] {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  };
  std::vector<quant::WeightView> views;
  for (uint64_t i = 0; i < count; ++i) {
    uint8_t* data = base + i * each;
    switch (o.format) {
      case WeightFormat::kFP8Block:  // e4m3 without the NaN codes 0x7f / 0xff
        for (uint64_t j = 0; j < db; ++j) {
          const auto b = static_cast<uint8_t>(next());
          data[j] = (b & 0x7f) == 0x7f ? 0x3e : b;
        }
        break;
      case WeightFormat::kMXFP4:  // every e2m1 code is finite
        for (uint64_t j = 0; j < db; ++j) data[j] = static_cast<uint8_t>(next());
        break;
      case WeightFormat::kBF16:  // normal values in [2^-8, 2^8), random sign
        for (uint64_t j = 0; j < db; j += 2) {
          const uint64_t r = next();
          const auto h = static_cast<uint16_t>(((r & 1) << 15) | ((119 + (r >> 1) % 16) << 7) |
                                               ((r >> 8) & 0x7f));
          std::memcpy(data + j, &h, 2);
        }
        break;
      case WeightFormat::kF32:
        for (uint64_t j = 0; j < db; j += 4) {
          const uint64_t r = next();
          const auto w = static_cast<uint32_t>(((r & 1) << 31) | ((119 + (r >> 1) % 16) << 23) |
                                               ((r >> 8) & 0x7fffff));
          std::memcpy(data + j, &w, 4);
        }
        break;
    }
    for (uint64_t j = 0; j < sb; ++j) data[db + j] = static_cast<uint8_t>(120 + next() % 8);
    FRUGAL_ASSIGN_OR_RETURN(quant::WeightView v,
                            quant::make_weight_view(o.format, o.rows, o.cols, data, db,
                                                    sb ? data + db : nullptr, sb, "GEMV probe"));
    views.push_back(v);
  }
  std::vector<float> x(static_cast<size_t>(o.cols)), y(static_cast<size_t>(o.rows));
  for (size_t j = 0; j < x.size(); ++j) x[j] = static_cast<float>(next() % 2001) * 1e-3f - 1.0f;
  std::vector<double> gbps;
  for (int r = 0; r < std::max(o.repetitions, 1) + 1; ++r) {  // +1: warm-up
    const auto t0 = Clock::now();
    for (const quant::WeightView& v : views) k.matmul(v, 1, x.data(), y.data());
    const double sec = seconds_since(t0);
    if (r > 0) gbps.push_back(static_cast<double>((db + sb) * count) / sec / 1e9);
  }
  return median(gbps);
}

}  // namespace frugal::engine
