// Internals shared by the matmul kernels (gemv.cpp, dense.cpp, gemm.cpp), compiled once per
// target like them: everything is in that target's namespace, so the copies never meet.
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include "kernels/op_table.h"
#include "kernels/simd/simd.h"
#include "kernels/simd/target.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {

// Any format, for m >= kGemmMinTokens (gemm.cpp): each weight tile decoded once.
void gemm_many_tokens(const MatmulTask& task, int64_t r0, int64_t r1);

namespace matmul_detail {

FRUGAL_SIMD_INLINE int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// e8m0 code -> 2^(c - 127), exact (code 0 is the f32 subnormal 2^-127; 0xff is rejected at load).
FRUGAL_SIMD_INLINE float e8m0_f32(uint8_t c) {
  return c == 0 ? 0x1p-127f : __builtin_bit_cast(float, static_cast<uint32_t>(c) << 23);
}

// One e2m1 nibble, exact.
FRUGAL_SIMD_INLINE float fp4_value(uint8_t nibble) {
  constexpr float kMag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  return (nibble & 8) ? -kMag[nibble & 7] : kMag[nibble & 7];
}

// y[t, r + i] = (first pass ? 0 : y[t, r + i]) + part[i * T + t] for R rows at r.
template <int R, int T>
FRUGAL_SIMD_INLINE void store_rows(const float* part, float* y, int64_t ldy, int64_t r,
                                   bool first) {
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < T; ++t) {
      float* dst = y + t * ldy + r + i;
      *dst = first ? part[i * T + t] : *dst + part[i * T + t];
    }
  }
}

// A group kernel: tokens [t0, t0 + T) of the task, rows [r0, r1).
using GroupFn = void (*)(const MatmulTask&, int64_t t0, int64_t r0, int64_t r1);

// fns[T - 1] = Group::template run<T> for T = 1 .. N.
template <typename Group, int... I>
constexpr std::array<GroupFn, sizeof...(I)> group_fns(std::integer_sequence<int, I...>) {
  return {&Group::template run<I + 1>...};
}

// Token groups of up to `group` tokens (fns[T - 1] runs T of them); with several groups, rows go
// in blocks of about kRowBlockBytes of weights (`align`-row aligned: multiples of the FP8 scale
// blocks for the block-scaled formats; at least min_rows) so that every group after the first
// reads them from L2.
inline void run_groups(const MatmulTask& task, int64_t r0, int64_t r1, const GroupFn* fns,
                       int group, int64_t row_bytes, int64_t align, int64_t min_rows) {
  int64_t block = kRowBlockBytes / row_bytes / align * align;
  if (block < min_rows) block = min_rows;
  for (int64_t b0 = r0; b0 < r1;) {
    const int64_t aligned_end = task.m <= group ? r1 : (b0 / align * align) + block;
    const int64_t b1 = aligned_end < r1 ? aligned_end : r1;
    for (int64_t t0 = 0; t0 < task.m; t0 += group) {
      const int64_t left = task.m - t0;
      fns[(left < group ? left : group) - 1](task, t0, b0, b1);
    }
    b0 = b1;
  }
}

}  // namespace matmul_detail
}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
