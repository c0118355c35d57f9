// AVX-512 y = x W^T for f32 and bf16 weights (bf16 widens to f32 exactly with a 16-bit shift).
// Register-blocked R rows x T tokens; x is read in place. f32 accumulation.
#include "kernels/x86/avx512_common.h"
#include "kernels/x86/x86.h"

namespace frugal::kernels::avx512 {
namespace {

template <bool kBf16>
FRUGAL_AVX512_INLINE __m512 load_w(const void* w, int64_t i, __mmask16 m) {
  if constexpr (kBf16) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(w) + i);
  }
}

template <bool kBf16>
FRUGAL_AVX512_INLINE __m512 load_w(const void* w, int64_t i) {
  if constexpr (kBf16) {
    const __m256i h =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_loadu_ps(static_cast<const float*>(w) + i);
  }
}

// out[r * T + t] = sum_k x[t][k] w[r][k] for R rows (element stride ldw) and T tokens.
template <bool kBf16, int R, int T>
void dense_rows(const void* w, int64_t ldw, const float* x, int64_t ldx, int64_t n, float* out) {
  constexpr int kElem = kBf16 ? 2 : 4;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  const auto* wb = static_cast<const char*>(w);
  int64_t k = 0;
  if constexpr (kBf16) {
    // Whole 64-byte lines of bf16 (32 weights). With at most 8 rows x tokens, two accumulators per
    // row and token so that enough FMA chains are independent; with more, the chains are enough
    // and a second set does not fit the 32 registers: one set is 1.85x faster at 4 x 4 and 1.1x
    // at 2 x 8 (BM_Matmul/bf16 m:4 and m:8, alternated binaries, docs/BENCHMARKS.md).
    constexpr bool kTwo = R * T <= 8;
    __m512 acc2[kTwo ? R : 1][kTwo ? T : 1];
    for (int r = 0; r < (kTwo ? R : 1); ++r) {
      for (int t = 0; t < (kTwo ? T : 1); ++t) acc2[r][t] = _mm512_setzero_ps();
    }
    for (; k + 32 <= n; k += 32) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const char* p = wb + (r * ldw + k) * kElem;
        prefetch_next_group(p, R * ldw * kElem);
        const __m512i raw = _mm512_loadu_si512(p);
        const __m512 lo = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(raw)), 16));
        const __m512 hi = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(raw, 1)), 16));
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          acc[r][t] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(x + t * ldx + k), acc[r][t]);
          if constexpr (kTwo) {
            acc2[r][t] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + t * ldx + k + 16), acc2[r][t]);
          } else {
            acc[r][t] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + t * ldx + k + 16), acc[r][t]);
          }
        }
      }
    }
    if constexpr (kTwo) {
      for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) acc[r][t] = _mm512_add_ps(acc[r][t], acc2[r][t]);
      }
    }
  }
  for (; k + 16 <= n; k += 16) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      // One prefetch per 64 bytes: every step for f32, every other one for bf16.
      if (!kBf16 || (k & 31) == 0) prefetch_next_group(wb + (r * ldw + k) * kElem, R * ldw * kElem);
      const __m512 wv = load_w<kBf16>(wb + r * ldw * kElem, k);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        acc[r][t] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + t * ldx + k), acc[r][t]);
      }
    }
  }
  if (k < n) {
    const __mmask16 m = lanes16(n - k);
    for (int r = 0; r < R; ++r) {
      const __m512 wv = load_w<kBf16>(wb + r * ldw * kElem, k, m);
      for (int t = 0; t < T; ++t) {
        acc[r][t] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + t * ldx + k), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) out[r * T + t] = hsum(acc[r][t]);
  }
}

// Groups of up to 4 tokens: 4 rows x 4 tokens of accumulators; x is read in column passes of
// kPrepFloats / T values, so the group's rows of x stay in L1. More tokens go in several groups
// over L2-sized blocks of rows (run_groups): the weights come from memory for the first group and
// from L2 for the others. Groups of 8 (2 rows x 8 tokens) ran out of registers and reloaded x for
// every row: at 8 tokens two groups of 4 are faster (BM_Matmul avx512 2 threads m:8, bf16 1.59 ->
// 0.99 ms, f32 3.22 -> 2.22 ms; docs/BENCHMARKS.md).
constexpr int kDenseTokens = 4;

template <bool kBf16, int T>
void dense_group(const MatmulTask& task, int64_t t0, int64_t r0, int64_t r1) {
  constexpr int R = 4;
  constexpr int64_t kDensePass = kPrepFloats / T;
  constexpr int kElem = kBf16 ? 2 : 4;
  const int64_t K = task.w.cols;
  const auto* wdata = static_cast<const char*>(task.w.data);
  const float* x = task.x + t0 * task.ldx;
  float* y = task.y + t0 * task.ldy;
  float part[R * T];
  // Columns in passes of kDensePass so the T rows of x being read stay in L1.
  for (int64_t c0 = 0; c0 < K; c0 += kDensePass) {
    const int64_t n = K - c0 < kDensePass ? K - c0 : kDensePass;
    auto emit = [&](int rows, int64_t r) {
      for (int i = 0; i < rows; ++i) {
        for (int t = 0; t < T; ++t) {
          float* dst = y + t * task.ldy + r + i;
          *dst = c0 == 0 ? part[i * T + t] : *dst + part[i * T + t];
        }
      }
    };
    int64_t r = r0;
    for (; r + R <= r1; r += R) {
      dense_rows<kBf16, R, T>(wdata + (r * K + c0) * kElem, K, x + c0, task.ldx, n, part);
      emit(R, r);
    }
    for (; r < r1; ++r) {
      dense_rows<kBf16, 1, T>(wdata + (r * K + c0) * kElem, K, x + c0, task.ldx, n, part);
      emit(1, r);
    }
  }
}

using GroupFn = void (*)(const MatmulTask&, int64_t, int64_t, int64_t);

// Token groups; with several groups, rows go in L2-sized blocks.
void run_groups(const MatmulTask& task, int64_t r0, int64_t r1, const GroupFn fns[kDenseTokens],
                int64_t row_bytes) {
  int64_t block = kRowBlockBytes / row_bytes;
  if (block < 16) block = 16;
  for (int64_t b0 = r0; b0 < r1;) {
    const int64_t b1 = task.m <= kDenseTokens || b0 + block > r1 ? r1 : b0 + block;
    for (int64_t t0 = 0; t0 < task.m; t0 += kDenseTokens) {
      const int64_t left = task.m - t0;
      fns[(left < kDenseTokens ? left : kDenseTokens) - 1](task, t0, b0, b1);
    }
    b0 = b1;
  }
}

}  // namespace

void matmul_f32(const MatmulTask& task, int64_t r0, int64_t r1) {
  if (task.m >= kGemmMinTokens) {
    gemm_many_tokens(task, r0, r1);
    return;
  }
  static constexpr GroupFn kFns[kDenseTokens] = {dense_group<false, 1>, dense_group<false, 2>,
                                                  dense_group<false, 3>, dense_group<false, 4>};
  run_groups(task, r0, r1, kFns, task.w.cols * 4);
}

void matmul_bf16(const MatmulTask& task, int64_t r0, int64_t r1) {
  if (task.m >= kGemmMinTokens) {
    gemm_many_tokens(task, r0, r1);
    return;
  }
  static constexpr GroupFn kFns[kDenseTokens] = {dense_group<true, 1>, dense_group<true, 2>,
                                                  dense_group<true, 3>, dense_group<true, 4>};
  run_groups(task, r0, r1, kFns, task.w.cols * 2);
}

}  // namespace frugal::kernels::avx512
