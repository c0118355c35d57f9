// Internals shared by the matmul kernels (gemv.cpp, dense.cpp, gemm.cpp), compiled once per
// target like them: everything is in that target's namespace, so the copies never meet.
#pragma once

#include <cstdint>
#include <utility>

#include "kernels/op_table.h"
#include "kernels/simd/simd.h"
#include "kernels/simd/target.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {

// The target's tuning (kMatmul) under the names the kernels use.
inline constexpr int kMaxTokens = kMatmul.max_tokens;
inline constexpr int kDenseTokens = kMatmul.dense_tokens;
inline constexpr int kBf16Tokens = kMatmul.bf16_tokens > 0 ? kMatmul.bf16_tokens : kDenseTokens;
inline constexpr int64_t kGemmMinTokens = kMatmul.gemm_min_tokens;
inline constexpr int64_t kFp4GemmMinTokens =
    kMatmul.fp4_gemm_min_tokens > 0 ? kMatmul.fp4_gemm_min_tokens : kMatmul.gemm_min_tokens;
inline constexpr int64_t kPrepFloats = kMatmul.prep_floats;
inline constexpr int64_t kRowBlockBytes = kMatmul.row_block_bytes;
inline constexpr bool kDenseBlockAhead = kMatmul.dense_block_ahead;
inline constexpr bool kFp4PrefetchL1 = kMatmul.fp4_prefetch_l1;
inline constexpr bool kBf16Lines = kMatmul.bf16_lines;
inline constexpr int kGemmRows = kMatmul.gemm_rows;
inline constexpr int64_t kGemmCols = kMatmul.gemm_cols;
inline constexpr int kGemmTokens = kMatmul.gemm_tokens;
constexpr int fp8_rows_for(int tokens) { return kMatmul.fp8_rows[tokens - 1]; }
constexpr int fp4_rows_for(int tokens) { return kMatmul.fp4_rows[tokens - 1]; }
constexpr int dense_rows_for(int tokens) { return kMatmul.dense_rows[tokens - 1]; }
constexpr int64_t dense_pass_for(int tokens) {
  return kPrepFloats / tokens < kMatmul.dense_pass_max ? kPrepFloats / tokens
                                                       : kMatmul.dense_pass_max;
}
static_assert(kMaxTokens <= 8 && kDenseTokens <= 8 && kBf16Tokens <= 8 && kGemmRows == 2 * kLanes);

// Any format, for m >= kGemmMinTokens (MXFP4: kFp4GemmMinTokens) (gemm.cpp): each weight decoded
// once per call.
void gemm_many_tokens(const MatmulTask& task, int64_t r0, int64_t r1);

namespace matmul_detail {

FRUGAL_SIMD_INLINE int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

inline constexpr int64_t kLine = 64;  // bytes per cache line: one software prefetch each

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

// y[t, i] = (first pass ? 0 : y[t, i]) + sums[i * T + t] for nr rows and T tokens (the totals of
// a k-lane block, here and in x86/bf16_dot_gemm.cpp).
template <int T>
FRUGAL_SIMD_INLINE void store_sums(const float* sums, float* y, int64_t ldy, int nr, bool first) {
  for (int t = 0; t < T; ++t) {
    float* dst = y + t * ldy;
    if (first) {
      for (int r = 0; r < nr; ++r) dst[r] = sums[r * T + t];
    } else {
      for (int r = 0; r < nr; ++r) dst[r] += sums[r * T + t];
    }
  }
}

// A group kernel: tokens [t0, t0 + T) of the task, rows [r0, r1). `ahead`: when > 0, the kernel
// prefetches the rows that many rows on (the next row block) instead of its next register group
// (the dense groups; the FP8 / MXFP4 groups are always given 0 and ignore it).
using GroupFn = void (*)(const MatmulTask&, int64_t t0, int64_t r0, int64_t r1, int64_t ahead);

// N kernel entry points indexed by token count - 1. A plain array, not std::array: a standard
// template instantiated here is a weak symbol that the linker could pick for baseline code.
template <typename Fn, int N>
struct FnTable {
  Fn at[N];
};

// at[T - 1] = Group::template run<T> for T = 1 .. N.
template <typename Group, int... I>
constexpr FnTable<GroupFn, sizeof...(I)> group_fns(std::integer_sequence<int, I...>) {
  return {{&Group::template run<I + 1>...}};
}

// Token groups of up to `group` tokens (fns[T - 1] runs T of them); with several groups, or from
// block_min_tokens tokens on (> 0), rows go in blocks of about kRowBlockBytes of weights
// (`align`-row aligned: multiples of the FP8 scale blocks for the block-scaled formats; at least
// min_rows) so that every group after the first reads them from L2. With `ahead` (the groups
// honour it), the last group of a block, which reads from L2 and would leave the memory idle,
// prefetches the next block (when it has as many rows), so the first group finds it in L2 too and
// the reads overlap the arithmetic instead of alternating with it; a single group likewise reads
// each block from L2 while the next one streams in.
inline void run_groups(const MatmulTask& task, int64_t r0, int64_t r1, const GroupFn* fns,
                       int group, int64_t row_bytes, int64_t align, int64_t min_rows,
                       bool ahead, int64_t block_min_tokens = 0) {
  const bool blocked = task.m > group || (block_min_tokens > 0 && task.m >= block_min_tokens);
  int64_t block = kRowBlockBytes / row_bytes / align * align;
  if (block < min_rows) block = min_rows;
  for (int64_t b0 = r0; b0 < r1;) {
    const int64_t aligned_end = !blocked ? r1 : (b0 / align * align) + block;
    const int64_t b1 = aligned_end < r1 ? aligned_end : r1;
    const int64_t next = ahead && b1 + (b1 - b0) <= r1 ? b1 - b0 : 0;
    for (int64_t t0 = 0; t0 < task.m; t0 += group) {
      const int64_t left = task.m - t0;
      fns[(left < group ? left : group) - 1](task, t0, b0, b1, left <= group ? next : 0);
    }
    b0 = b1;
  }
}

}  // namespace matmul_detail
}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
