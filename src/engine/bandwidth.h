// The machine's read bandwidth, measured in the same run as the model (frugal bench): threads of
// the engine's pool sum 64-bit words of a huge-page-advised buffer larger than the last-level
// cache, the same kind of streaming read a decode step does over the weights.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "core/thread_pool.h"

namespace frugal::engine {

struct BandwidthOptions {
  uint64_t bytes = uint64_t{512} << 20;  // working set; must exceed the LLC
  int repetitions = 5;                   // the median is reported
};

// Median read bandwidth in GB/s (1e9 bytes per second). `pool` may be null (one thread).
Result<double> measure_read_bandwidth(ThreadPool* pool, const BandwidthOptions& options = {});

}  // namespace frugal::engine
