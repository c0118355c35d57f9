// y = x W^T for f32 and bf16 weights (bf16 widens to f32 exactly), for decode and small token
// groups. Register-blocked R rows x T tokens (R from the target header); x is read in place.
// f32 accumulation. Written once against the target vocabulary (simd/target.h).
#include "kernels/simd/matmul.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {
namespace {

using namespace matmul_detail;

template <bool kBf16>
FRUGAL_SIMD_INLINE VF load_w(const void* w, int64_t i) {
  if constexpr (kBf16) {
    return load_bf16(static_cast<const uint16_t*>(w) + i);
  } else {
    return loadu(static_cast<const float*>(w) + i);
  }
}

template <bool kBf16>
FRUGAL_SIMD_INLINE VF load_w_n(const void* w, int64_t i, int64_t n) {
  if constexpr (kBf16) {
    return load_bf16_n(static_cast<const uint16_t*>(w) + i, n);
  } else {
    return load_n(static_cast<const float*>(w) + i, n);
  }
}

// out[r * T + t] = sum_k x[t][k] w[r][k] for R rows (element stride ldw) and T tokens. The bytes
// ahead_bytes on (the next register group's rows, or the next row block's: run_groups) are
// prefetched into L2 as in gemv.cpp, one line per 64 bytes read.
// Always inlined into its group, as the hand-written kernels were: out of line, bf16 with 3 tokens
// ran 10-20 % slower (kernels_bench BM_Matmul/bf16 avx512 threads:1 m:3).
// kTwo: bf16 lines with two accumulator sets (see below), chosen by the group for its R rows and
// given to its single leftover rows too, so that a row's sums never depend on which rows it is
// computed with (a matmul split across threads gives the bits of one thread: MatmulTest).
template <bool kBf16, int R, int T, bool kTwo>
[[gnu::always_inline]] inline void dense_rows(const void* w, int64_t ldw, const float* x,
                                              int64_t ldx, int64_t n, int64_t ahead_bytes,
                                              float* out) {
  constexpr int kElem = kBf16 ? 2 : 4;
  VF acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = zero();
  }
  const auto* wb = static_cast<const char*>(w);
  int64_t k = 0;
  // bf16 in lines: where the target asks for it (up to bf16_line_tokens tokens), and for groups
  // with their own row count (a single row needs the second chain).
  if constexpr (kBf16 && ((kBf16Lines && T <= kMatmul.bf16_line_tokens) ||
                          kMatmul.bf16_rows[T - 1] > 0)) {
    // Whole lines of bf16 (2 vectors); with at most 8 rows x tokens, two accumulators per row and
    // token so that enough FMA chains are independent; with more, the chains are enough and a
    // second set does not fit the registers (kBf16Lines in the target header).
    VF acc2[kTwo ? R : 1][kTwo ? T : 1];
    for (int r = 0; r < (kTwo ? R : 1); ++r) {
      for (int t = 0; t < (kTwo ? T : 1); ++t) acc2[r][t] = zero();
    }
    for (; k + 2 * kLanes <= n; k += 2 * kLanes) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const char* p = wb + (r * ldw + k) * kElem;
        if (2 * kLanes * kElem >= 64 || (k * kElem) % 64 == 0) prefetch_l2(p + ahead_bytes);
        VF lo, hi;
        load_bf16x2(reinterpret_cast<const uint16_t*>(p), &lo, &hi);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          acc[r][t] = fmadd(lo, loadu(x + t * ldx + k), acc[r][t]);
          if constexpr (kTwo) {
            acc2[r][t] = fmadd(hi, loadu(x + t * ldx + k + kLanes), acc2[r][t]);
          } else {
            acc[r][t] = fmadd(hi, loadu(x + t * ldx + k + kLanes), acc[r][t]);
          }
        }
      }
    }
    if constexpr (kTwo) {
      for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) acc[r][t] = add(acc[r][t], acc2[r][t]);
      }
    }
  }
  for (; k + kLanes <= n; k += kLanes) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      // One prefetch per 64 bytes (every step when a vector of weights is a whole line).
      if (kLanes * kElem >= 64 || (k * kElem) % 64 == 0) {
        prefetch_l2(wb + (r * ldw + k) * kElem + ahead_bytes);
      }
      const VF wv = load_w<kBf16>(wb + r * ldw * kElem, k);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[r][t] = fmadd(wv, loadu(x + t * ldx + k), acc[r][t]);
    }
  }
  if (k < n) {
    for (int r = 0; r < R; ++r) {
      const VF wv = load_w_n<kBf16>(wb + r * ldw * kElem, k, n - k);
      for (int t = 0; t < T; ++t) acc[r][t] = fmadd(wv, load_n(x + t * ldx + k, n - k), acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) out[r * T + t] = hsum(acc[r][t]);
  }
}

// Groups of up to kDenseTokens (f32) / kBf16Tokens (bf16) tokens: dense_rows_for(T) rows x T
// tokens of accumulators; x is read in column passes of dense_pass_for(T) values, so the group's
// rows of x stay in L1. More tokens go in several groups over L2-sized blocks of rows (run_groups):
// the weights come from memory for the first group and from L2 for the others.
template <bool kBf16>
struct DenseGroup {
  template <int T>
  static void run(const MatmulTask& task, int64_t t0, int64_t r0, int64_t r1, int64_t ahead) {
    constexpr int R =
        kBf16 && kMatmul.bf16_rows[T - 1] > 0 ? kMatmul.bf16_rows[T - 1] : dense_rows_for(T);
    constexpr bool kTwo = R * T <= 8;  // two accumulator sets for bf16 lines (dense_rows)
    constexpr int64_t kPass = dense_pass_for(T);
    constexpr int kElem = kBf16 ? 2 : 4;
    const int64_t K = task.w.cols;
    const auto* wdata = static_cast<const char*>(task.w.data);
    const float* x = task.x + t0 * task.ldx;
    float* y = task.y + t0 * task.ldy;
    float part[R * T];
    for (int64_t c0 = 0; c0 < K; c0 += kPass) {
      const int64_t n = min64(K - c0, kPass);
      int64_t r = r0;
      for (; r + R <= r1; r += R) {
        dense_rows<kBf16, R, T, kTwo>(wdata + (r * K + c0) * kElem, K, x + c0, task.ldx, n,
                                (ahead > 0 ? ahead : R) * K * kElem, part);
        store_rows<R, T>(part, y, task.ldy, r, c0 == 0);
      }
      for (; r < r1; ++r) {
        dense_rows<kBf16, 1, T, kTwo>(wdata + (r * K + c0) * kElem, K, x + c0, task.ldx, n,
                                (ahead > 0 ? ahead : 1) * K * kElem, part);
        store_rows<1, T>(part, y, task.ldy, r, c0 == 0);
      }
    }
  }
};

constexpr auto kF32Fns =
    group_fns<DenseGroup<false>>(std::make_integer_sequence<int, kDenseTokens>());
constexpr auto kBf16Fns =
    group_fns<DenseGroup<true>>(std::make_integer_sequence<int, kBf16Tokens>());

}  // namespace

void matmul_f32(const MatmulTask& task, int64_t r0, int64_t r1) {
  if (task.m >= kGemmMinTokens) {
    gemm_many_tokens(task, r0, r1);
    return;
  }
  run_groups(task, r0, r1, kF32Fns.at, kDenseTokens, task.w.cols * 4, 1, 16,
             kDenseBlockAhead, kMatmul.dense_block_min_tokens);
}

void matmul_bf16(const MatmulTask& task, int64_t r0, int64_t r1) {
  if (task.m >= kGemmMinTokens) {
    gemm_many_tokens(task, r0, r1);
    return;
  }
  run_groups(task, r0, r1, kBf16Fns.at, kBf16Tokens, task.w.cols * 2, 1, 16,
             kDenseBlockAhead, kMatmul.dense_block_min_tokens);
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
