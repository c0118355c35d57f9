#include "engine/bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "core/memory.h"

namespace frugal::engine {
namespace {

// Four independent chains so the loop is bound by memory, not by the add latency.
uint64_t read_sum(const uint64_t* p, int64_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t i = 0; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

}  // namespace

Result<double> measure_read_bandwidth(ThreadPool* pool, const BandwidthOptions& options) {
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
    const auto t0 = std::chrono::steady_clock::now();
    auto body = [&](int64_t b, int64_t e, int) {
      sink.fetch_add(read_sum(p + b * kChunkWords, (e - b) * kChunkWords),
                     std::memory_order_relaxed);
    };
    if (pool != nullptr) {
      pool->parallel_for(n_chunks, 1, body);
    } else {
      body(0, n_chunks, 0);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) gbps.push_back(static_cast<double>(bytes) / s / 1e9);
  }
  if (sink.load() == 1) gbps.push_back(0);  // keeps the sums observable
  std::sort(gbps.begin(), gbps.end());
  return gbps[gbps.size() / 2];
}

}  // namespace frugal::engine
