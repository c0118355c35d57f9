// The machine's limits, measured in the same run as the model (frugal bench) with the kernels'
// own probes (Kernels::read_stream, Kernels::fma_peak) on the threads of their pool:
//  - read bandwidth: a streaming read of a huge-page-advised buffer larger than the last-level
//    cache, the same kind of read a decode step does over the weights;
//  - FMA peak: independent FMA chains in registers on every thread, the compute ceiling of the
//    f32 matmuls that prefill runs;
//  - GEMV rate: y = x W^T (one token) over a ring of weight matrices larger than the LLC, so
//    every weight byte comes from DRAM, as in decode.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "kernels/kernels.h"
#include "quant/weight_view.h"

namespace frugal::engine {

struct BandwidthOptions {
  uint64_t bytes = uint64_t{512} << 20;  // working set; must exceed the LLC
  int repetitions = 5;                   // the median is reported
};

// Median read bandwidth in GB/s (1e9 bytes per second) over k.pool()'s threads (one thread when
// it has none).
Result<double> measure_read_bandwidth(const kernels::Kernels& k,
                                      const BandwidthOptions& options = {});

// Median f32 FMA peak in GFLOP/s over k.pool()'s threads, `repetitions` runs of ~50 ms.
double measure_fma_peak(const kernels::Kernels& k, int repetitions = 5);

struct GemvProbeOptions {
  quant::WeightFormat format = quant::WeightFormat::kFP8Block;
  int64_t rows = 4096;
  int64_t cols = 4096;
  uint64_t ring_bytes = uint64_t{512} << 20;  // at least this many bytes of matrices
  int repetitions = 5;                        // passes over the ring; the median is reported
};

// Median GB/s of weight bytes (incl. scales) read by k.matmul(w, 1, ...) over a ring of random
// matrices (valid, NaN-free codes; normal bf16/f32 values) in huge-page memory.
Result<double> measure_gemv(const kernels::Kernels& k, const GemvProbeOptions& options);

}  // namespace frugal::engine
