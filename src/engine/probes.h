// The machine's limits, measured in the same run as the model (frugal bench) with the kernels'
// own probes (Kernels::read_stream, Kernels::fma_peak) on the threads of their pool:
//  - read bandwidth: a streaming read of a huge-page-advised buffer larger than the last-level
//    cache, the same kind of read a decode step does over the weights;
//  - FMA peak: independent FMA chains in registers on every thread, the compute ceiling of the
//    f32 matmuls that prefill runs;
//  - GEMV rate: y = x W^T (one token) over a ring of weight matrices larger than the LLC, so
//    every weight byte comes from DRAM, as in decode.
// The probes own their buffers, so a caller can alternate a probe pass with the measurement it
// rates and take the median of the per-pass ratios: the bandwidth a shared machine leaves to
// this process drifts over seconds, which a single probe before or after would not see.
#pragma once

#include <cstdint>
#include <vector>

#include "core/memory.h"
#include "core/status.h"
#include "kernels/kernels.h"
#include "quant/weight_view.h"

namespace frugal::engine {

double median(std::vector<double> v);  // of a non-empty vector

// A buffer of `bytes` (rounded down to whole MiB, at least one) advised as huge pages and touched
// once at creation, read by Kernels::read_stream in 1 MiB work items on k.pool()'s threads.
class ReadProbe {
 public:
  static Result<ReadProbe> create(uint64_t bytes);
  // One pass; GB/s (1e9 bytes per second).
  double run(const kernels::Kernels& k) const;

 private:
  AlignedBuffer buf_;
  uint64_t bytes_ = 0;
};

struct BandwidthOptions {
  uint64_t bytes = uint64_t{512} << 20;  // working set; must exceed the LLC
  int repetitions = 5;                   // the median is reported
};

// ReadProbe: a warm-up pass, then the median of `repetitions` passes.
Result<double> measure_read_bandwidth(const kernels::Kernels& k,
                                      const BandwidthOptions& options = {});

// Median f32 FMA peak in GFLOP/s over k.pool()'s threads, `repetitions` runs of ~50 ms.
double measure_fma_peak(const kernels::Kernels& k, int repetitions = 5);
// The same for the bf16 dot product (vdpbf16ps, MatmulInput::kBf16Exact's GEMM); 0 where
// k.bf16_dot() is false.
double measure_bf16_dot_peak(const kernels::Kernels& k, int repetitions = 5);

struct GemvProbeOptions {
  quant::WeightFormat format = quant::WeightFormat::kFP8Block;
  int64_t rows = 4096;
  int64_t cols = 4096;
  uint64_t ring_bytes = uint64_t{512} << 20;  // at least this many bytes of matrices
};

// A ring of random matrices (valid, NaN-free codes; normal bf16/f32 values) in huge-page memory.
class GemvProbe {
 public:
  static Result<GemvProbe> create(const GemvProbeOptions& options);
  // One pass of k.matmul(w, 1, ...) over the ring; GB/s of weight bytes incl. scales.
  double run(const kernels::Kernels& k);

 private:
  AlignedBuffer ring_;
  std::vector<quant::WeightView> views_;
  std::vector<float> x_, y_;
  uint64_t bytes_each_ = 0;
};

}  // namespace frugal::engine
