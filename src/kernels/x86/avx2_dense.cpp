// AVX2 y = x W^T for f32 and bf16 weights (the AVX-512 design of avx512_dense.cpp at 8 lanes).
#include <cstring>

#include "kernels/x86/avx2_common.h"
#include "kernels/x86/x86.h"

namespace frugal::kernels::avx2 {
namespace {

template <bool kBf16>
FRUGAL_AVX2_INLINE __m256 load_w(const void* w, int64_t i) {
  if constexpr (kBf16) {
    const __m128i h =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_loadu_ps(static_cast<const float*>(w) + i);
  }
}

template <bool kBf16, int R, int T>
void dense_rows(const void* w, int64_t ldw, const float* x, int64_t ldx, int64_t n, float* out) {
  constexpr int kElem = kBf16 ? 2 : 4;
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  const auto* wb = static_cast<const char*>(w);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      if (((k * kElem) & 63) == 0) prefetch_next_group(wb + (r * ldw + k) * kElem, R * ldw * kElem);
      const __m256 wv = load_w<kBf16>(wb + r * ldw * kElem, k);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        acc[r][t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * ldx + k), acc[r][t]);
      }
    }
  }
  if (k < n) {
    const __m256i m = lanes8(n - k);
    for (int r = 0; r < R; ++r) {
      alignas(32) char tail[32] = {};
      std::memcpy(tail, wb + (r * ldw + k) * kElem, static_cast<size_t>((n - k) * kElem));
      const __m256 wv = load_w<kBf16>(tail, 0);
      for (int t = 0; t < T; ++t) {
        acc[r][t] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(x + t * ldx + k, m), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) out[r * T + t] = hsum(acc[r][t]);
  }
}

// Groups of up to kDenseTokens tokens; at most 8 accumulators (AVX2 has 16 ymm registers).
constexpr int kDenseTokens = 4;
constexpr int64_t kDensePass = 2048;  // columns per pass: <= 4 tokens x 8 KiB of x stay in L1

template <bool kBf16, int T>
void dense_group(const MatmulTask& task, int64_t t0, int64_t r0, int64_t r1) {
  constexpr int R = T <= 2 ? 4 : 2;
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

}  // namespace frugal::kernels::avx2
