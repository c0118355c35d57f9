// Entry points of the per-target kernels (src/kernels/simd/*.cpp, compiled once per target with
// its flags). Each target's set lives in its own namespace; only the ones built for this
// architecture are defined, and only called after the run-time check in isa.cpp. Plain
// declarations: this header is included by the baseline-compiled dispatch (kernels.cpp) and by
// the per-target files; see op_table.h for what each entry computes.
#pragma once

#include <cstdint>

#include "kernels/op_table.h"

// The same list for every target (X = the namespace).
#define FRUGAL_SIMD_DECLARE_ENTRIES(X)                                                          \
  namespace frugal::kernels::simd::X {                                                         \
  /* Fills the table entries this target implements (over whatever is there). */                \
  void install(OpTable* t);                                                                    \
  /* matmul: gemv.cpp, dense.cpp, gemm.cpp */                                                  \
  void matmul_f32(const MatmulTask& task, int64_t r0, int64_t r1);                             \
  void matmul_bf16(const MatmulTask& task, int64_t r0, int64_t r1);                            \
  void matmul_fp8(const MatmulTask& task, int64_t r0, int64_t r1);                             \
  void matmul_mxfp4(const MatmulTask& task, int64_t r0, int64_t r1);                           \
  /* ops.cpp */                                                                                \
  void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);             \
  void rope(float* x, int64_t n_vec, int64_t dim, int64_t rope_dim, const float* cos,          \
            const float* sin, RopeDirection dir);                                              \
  void softmax(float* x, int64_t n);                                                           \
  void swiglu(const float* gate, const float* up, int64_t n, float limit, float scale,         \
              float* out);                                                                     \
  float sum_squares(const float* x, int64_t n);                                                \
  void fp8_round(const float* x, int64_t n, int64_t block, float* out);                        \
  void weighted_sum(const float* x, const float* c, int64_t k, int64_t n, float* out);         \
  void hc_post(const HcPostArgs& a, int64_t t);                                                \
  /* attention.cpp */                                                                          \
  void attention(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1);                   \
  /* probes.cpp */                                                                             \
  uint64_t fma_peak(int64_t iters);                                                            \
  uint64_t read_stream(const uint64_t* p, int64_t n_words);                                    \
  }

#if defined(__x86_64__) || defined(_M_X64)
FRUGAL_SIMD_DECLARE_ENTRIES(avx2)
FRUGAL_SIMD_DECLARE_ENTRIES(avx512)
#elif defined(__aarch64__)
FRUGAL_SIMD_DECLARE_ENTRIES(neon)
#endif

#undef FRUGAL_SIMD_DECLARE_ENTRIES
