// Internal: the table of single-threaded kernel entry points behind the Kernels API. The scalar
// oracle fills every entry; each SIMD target then overwrites the entries it implements (avx2,
// then avx512; or neon), so a table is always complete. Threading, argument checks and splitting
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
  // MatmulInput::kBf16Exact only (Bf16DotOps::matmul): x as bf16, [m, ldxb], columns past
  // w.cols zero up to ldxb (a multiple of 32).
  const uint16_t* xb = nullptr;
  int64_t ldxb = 0;
};
using MatmulFn = void (*)(const MatmulTask& task, int64_t r0, int64_t r1);

// The bf16 dot-product GEMM for x values exact in bf16 (src/kernels/x86/bf16_dot_gemm.cpp,
// AVX512-BF16; Kernels::matmul with MatmulInput::kBf16Exact). Null entries: not offered.
struct Bf16DotOps {
  // Per weight format: from this many tokens on the bf16 GEMM is used (below: the f32 kernels).
  int64_t min_tokens[quant::kNumWeightFormats] = {};
  // Bytes of bf16 x for m rows of `cols` columns (ldxb = round_up(cols, 32)).
  static constexpr int64_t ldxb_for(int64_t cols) { return (cols + 31) / 32 * 32; }
  // x rows [t0, t1) (row stride ldx, `cols` columns) -> xb rows (stride ldxb, zero padded).
  // Returns -1 if some value is not exact in bf16, else the smallest biased f32 exponent among
  // the nonzero values (0: a subnormal; 255: all zero).
  int (*to_bf16)(const float* x, int64_t t0, int64_t t1, int64_t cols, int64_t ldx, uint16_t* xb,
                 int64_t ldxb) = nullptr;
  // Smallest and largest e8m0 scale code of an FP8 / MXFP4 weight: lo | hi << 8.
  int (*scale_range)(const quant::WeightView& w) = nullptr;
  MatmulFn matmul[quant::kNumWeightFormats] = {};  // task.xb set; FP8 and MXFP4 only
  // 24 independent vdpbf16ps chains; returns the flops done (2 per product, 32 per instruction).
  uint64_t (*peak)(int64_t iters) = nullptr;
};

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
  // out[n] = x[n] rounded as act_quant(x, block) does (quant::fp8_simulate: e4m3 codes times a
  // power-of-two scale per block of `block` elements); out may be x. block divides n.
  void (*fp8_round)(const float* x, int64_t n, int64_t block, float* out) = nullptr;
  // Sum of squares of x[n] (the hyper-connection RMS over all streams).
  float (*sum_squares)(const float* x, int64_t n) = nullptr;
  // out[n] = sum_j c[j] * x[j * n + i] for j < k (the hyper-connection stream mix).
  void (*weighted_sum)(const float* x, const float* c, int64_t k, int64_t n, float* out) = nullptr;
  // Token t of HcPostArgs.
  void (*hc_post)(const HcPostArgs& a, int64_t t) = nullptr;

  // Machine probes (Kernels::fma_peak, Kernels::read_stream).
  uint64_t (*fma_peak)(int64_t iters) = nullptr;
  uint64_t (*read_stream)(const uint64_t* p, int64_t n_words) = nullptr;

  Bf16DotOps bf16_dot;  // filled by install_bf16_dot where the CPU has AVX512-BF16
};

// Fill a table: ref first, then each target over it (simd::<target>::install, simd.h).
void install_ref(OpTable* t);
// x86/bf16_dot_gemm.cpp: t->bf16_dot (only after cpu_has_bf16_dot()).
void install_bf16_dot(OpTable* t);

}  // namespace frugal::kernels
