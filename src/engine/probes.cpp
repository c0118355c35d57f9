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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Result<ReadProbe> ReadProbe::create(uint64_t bytes) {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  ReadProbe p;
  p.bytes_ = std::max<uint64_t>(bytes / kMiB, 1) * kMiB;
  MemoryStats stats;
  FRUGAL_ASSIGN_OR_RETURN(
      p.buf_, AlignedBuffer::allocate(p.bytes_, &stats, {.huge_pages = HugePages::kAlways}));
  std::memset(p.buf_.data(), 1, p.bytes_);  // fault every page in before timing
  return p;
}

double ReadProbe::run(const kernels::Kernels& k) const {
  constexpr int64_t kChunkWords = int64_t{1} << 17;  // 1 MiB per work item
  const auto* p = buf_.as<const uint64_t>();
  const int64_t n_chunks = static_cast<int64_t>(bytes_ / 8) / kChunkWords;
  std::atomic<uint64_t> sink{0};
  const auto t0 = Clock::now();
  run_on_pool(k, n_chunks, [&](int64_t b, int64_t e, int) {
    for (int64_t c = b; c < e; ++c) {
      sink.fetch_or(k.read_stream(p + c * kChunkWords, kChunkWords), std::memory_order_relaxed);
    }
  });
  const double s = seconds_since(t0);
  // The buffer is all 1 bits, so the OR is never 0: the reads cannot be optimised away.
  return sink.load() == 0 ? 0.0 : static_cast<double>(bytes_) / s / 1e9;
}

Result<double> measure_read_bandwidth(const kernels::Kernels& k, const BandwidthOptions& options) {
  FRUGAL_ASSIGN_OR_RETURN(ReadProbe probe, ReadProbe::create(options.bytes));
  probe.run(k);  // warm-up
  std::vector<double> gbps;
  for (int r = 0; r < std::max(options.repetitions, 1); ++r) gbps.push_back(probe.run(k));
  return median(gbps);
}

namespace {

// Median GFLOP/s of `probe(iters)` (returns the flops it did) run on every thread of k's pool,
// `repetitions` runs of ~50 ms sized by a short calibration on this thread.
template <typename Probe>
double measure_peak(const kernels::Kernels& k, int repetitions, Probe probe) {
  const int threads = k.pool() != nullptr ? k.pool()->n_threads() : 1;
  int64_t iters = int64_t{1} << 16;
  const auto c0 = Clock::now();
  const uint64_t cal = probe(iters);
  if (cal == 0) return 0.0;
  const double per_flop = seconds_since(c0) / static_cast<double>(cal);
  iters = std::max<int64_t>(iters, static_cast<int64_t>(0.05 / per_flop / (cal / iters)));
  std::vector<double> gflops;
  for (int r = 0; r < std::max(repetitions, 1); ++r) {
    std::atomic<uint64_t> flops{0};
    const auto t0 = Clock::now();
    run_on_pool(k, threads, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) flops.fetch_add(probe(iters), std::memory_order_relaxed);
    });
    gflops.push_back(static_cast<double>(flops.load()) / seconds_since(t0) / 1e9);
  }
  return median(gflops);
}

}  // namespace

double measure_fma_peak(const kernels::Kernels& k, int repetitions) {
  return measure_peak(k, repetitions, [&](int64_t iters) { return k.fma_peak(iters); });
}

double measure_bf16_dot_peak(const kernels::Kernels& k, int repetitions) {
  if (!k.bf16_dot()) return 0.0;
  return measure_peak(k, repetitions, [&](int64_t iters) { return k.bf16_dot_peak(iters); });
}

Result<GemvProbe> GemvProbe::create(const GemvProbeOptions& o) {
  if (o.rows <= 0 || o.cols <= 0) return invalid_argument("GEMV probe: empty matrix");
  const uint64_t db = quant::weight_data_bytes(o.format, o.rows, o.cols);
  const uint64_t sb = quant::weight_scale_bytes(o.format, o.rows, o.cols);
  const uint64_t each = (db + sb + 63) / 64 * 64;  // matrix then its scales, 64-byte aligned
  const uint64_t count = std::max<uint64_t>(o.ring_bytes / each + 1, 2);
  GemvProbe g;
  g.bytes_each_ = db + sb;
  MemoryStats stats;
  FRUGAL_ASSIGN_OR_RETURN(
      g.ring_, AlignedBuffer::allocate(each * count, &stats, {.huge_pages = HugePages::kAlways}));
  uint8_t* base = g.ring_.as<uint8_t>();
  for (uint64_t i = 0; i < count; ++i) {
    uint8_t* data = base + i * each;
    quant::fill_random_weight_codes(o.format, data, db, i + 1);  // values do not change speed
    for (uint64_t j = 0; j < sb; ++j) data[db + j] = static_cast<uint8_t>(120 + j % 8);
    FRUGAL_ASSIGN_OR_RETURN(quant::WeightView v,
                            quant::make_weight_view(o.format, o.rows, o.cols, data, db,
                                                    sb ? data + db : nullptr, sb, "GEMV probe"));
    g.views_.push_back(v);
  }
  g.x_.resize(static_cast<size_t>(o.cols));
  g.y_.resize(static_cast<size_t>(o.rows));
  for (size_t j = 0; j < g.x_.size(); ++j) g.x_[j] = static_cast<float>(j % 2001) * 1e-3f - 1.0f;
  return g;
}

double GemvProbe::run(const kernels::Kernels& k) {
  const auto t0 = Clock::now();
  for (const quant::WeightView& v : views_) k.matmul(v, 1, x_.data(), y_.data());
  const double sec = seconds_since(t0);
  return static_cast<double>(bytes_each_ * views_.size()) / sec / 1e9;
}

}  // namespace frugal::engine
