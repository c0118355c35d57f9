// Internal: the table of single-threaded kernel entry points behind the Kernels API. The scalar
// oracle fills every entry; each ISA level then overwrites the entries it implements (avx2, then
// avx512, then amx; or neon), so a table is always complete. Threading, argument checks and splitting
// into row / head ranges live in kernels.cpp; the entries only compute their range.
//
// Plain data and function pointers only: the per-target files include this header.
#pragma once

#include <cstdint>

#include "kernels/op_args.h"
#include "quant/weight_view.h"

namespace frugal::kernels {

// y[t, r] for t < m and rows r in [r0, r1): y = x W^T.
struct MatmulTask {
  quant::WeightView w;
  const float* x = nullptr;  // [m, w.cols], row stride ldx
  int64_t ldx = 0;
  float* y = nullptr;  // [m, w.rows], row stride ldy
  int64_t ldy = 0;
  int64_t m = 0;
};
using MatmulFn = void (*)(const MatmulTask& task, int64_t r0, int64_t r1);

struct OpTable {
  MatmulFn matmul[quant::kNumWeightFormats] = {};

  // out[n] = (w ? w : 1) * x * rsqrt(mean(x^2) + eps)
  void (*rms_norm)(const float* x, const float* w, int64_t n, float eps, float* out) = nullptr;
  void (*rope)(float* x, int64_t n_vec, int64_t dim, int64_t rope_dim, const float* cos,
               const float* sin, RopeDirection dir) = nullptr;
  void (*softmax)(float* x, int64_t n) = nullptr;
  // Query t, heads [h0, h1).
  void (*attention)(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1) = nullptr;
  void (*swiglu)(const float* gate, const float* up, int64_t n, float limit, float scale,
                 float* out) = nullptr;
  // Sum of squares of x[n] (the hyper-connection RMS over all streams).
  float (*sum_squares)(const float* x, int64_t n) = nullptr;
  // out[n] = sum_j c[j] * x[j * n + i] for j < k (the hyper-connection stream mix).
  void (*weighted_sum)(const float* x, const float* c, int64_t k, int64_t n, float* out) = nullptr;
  // Token t of HcPostArgs.
  void (*hc_post)(const HcPostArgs& a, int64_t t) = nullptr;

  // Machine probes (Kernels::fma_peak, Kernels::read_stream).
  uint64_t (*fma_peak)(int64_t iters) = nullptr;
  uint64_t (*read_stream)(const uint64_t* p, int64_t n_words) = nullptr;
};

// Fill a table: ref first, then each level over it (the simd/ targets: simd.h).
void install_ref(OpTable* t);
// The previous x86 kernels (src/kernels/x86/, FRUGAL_KERNELS=old) until they are deleted.
void install_avx2(OpTable* t);
void install_avx512(OpTable* t);
void install_amx(OpTable* t);

}  // namespace frugal::kernels
