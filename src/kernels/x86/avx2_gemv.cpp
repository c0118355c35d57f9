// AVX2 y = x W^T for the block-scaled formats: the AVX-512 design (avx512_gemv.cpp) at 8 lanes.
//  - FP8: x pre-multiplied by 2^8 * block scale per 128-row block; e4m3 -> f16 -> f32 decode.
//  - MXFP4: 64-element chunks (32 bytes) decoded through bf16 byte tables (fp4_decode); x is
//    permuted into the decode's order once per pass; scales per chunk and row.
// Tails and the end of the matrix go through a zero-padded stack copy (AVX2 has no byte masks).
#include <cstring>

#include "kernels/x86/avx2_common.h"
#include "kernels/x86/x86.h"

namespace frugal::kernels::avx2 {
namespace {

int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int64_t pass_cols(int tokens) {
  const int64_t kc = kPrepFloats / tokens / 128 * 128;
  return kc < 128 ? 128 : kc;
}

template <int R, int T>
FRUGAL_AVX2_INLINE void store_rows(const float* part, float* y, int64_t ldy, int64_t r,
                                   bool first) {
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < T; ++t) {
      float* dst = y + t * ldy + r + i;
      *dst = first ? part[i * T + t] : *dst + part[i * T + t];
    }
  }
}

// ---- FP8 ----

template <int R, int T>
void fp8_rows(const uint8_t* w, int64_t ldw, const float* xs, int64_t ldxs, int64_t n, float* out) {
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  auto step = [&](int r, int64_t k, __m128i c0, __m128i c1) {
    __m256 v[4];
    fp8x16_to_f32(c0, &v[0], &v[1]);
    fp8x16_to_f32(c1, &v[2], &v[3]);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const float* x = xs + t * ldxs + k;
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        acc[r][t] = _mm256_fmadd_ps(v[q], _mm256_load_ps(x + 8 * q), acc[r][t]);
      }
    }
  };
  int64_t k = 0;
  for (; k + 32 <= n; k += 32) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const auto* p = reinterpret_cast<const __m128i*>(w + r * ldw + k);
      if ((k & 63) == 0) prefetch_next_group(p, R * ldw);
      step(r, k, _mm_loadu_si128(p), _mm_loadu_si128(p + 1));
    }
  }
  if (k < n) {
    for (int r = 0; r < R; ++r) {
      alignas(16) uint8_t tail[32] = {};
      std::memcpy(tail, w + r * ldw + k, static_cast<size_t>(n - k));
      step(r, k, _mm_load_si128(reinterpret_cast<const __m128i*>(tail)),
           _mm_load_si128(reinterpret_cast<const __m128i*>(tail + 16)));
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) out[r * T + t] = hsum(acc[r][t]);
  }
}

template <int T>
void fp8_group(const MatmulTask& task, int64_t t0, int64_t r0, int64_t r1) {
  constexpr int R = T == 1 ? 4 : 2;  // <= 8 accumulators + 4 decoded vectors
  alignas(32) float xs[kPrepFloats];
  float part[R * T];
  const int64_t K = task.w.cols, kc = pass_cols(T);
  const int64_t scols = (K + 127) / 128;
  const auto* wdata = static_cast<const uint8_t*>(task.w.data);
  for (int64_t g0 = r0; g0 < r1;) {
    const int64_t g = g0 / 128, g1 = min64(r1, (g + 1) * 128);
    const uint8_t* srow = task.w.scales + g * scols;
    for (int64_t c0 = 0; c0 < K; c0 += kc) {
      const int64_t n = min64(kc, K - c0), npad = (n + 31) / 32 * 32;
      for (int t = 0; t < T; ++t) {
        const float* x = task.x + (t0 + t) * task.ldx + c0;
        float* dst = xs + t * kc;
        for (int64_t i = 0; i < npad; i += 8) {
          const __m256 s = _mm256_set1_ps(e8m0_f32(srow[(c0 + i) / 128]) * 256.0f);
          const __m256 v = _mm256_maskload_ps(x + i, lanes8(n - i));
          _mm256_store_ps(dst + i, _mm256_mul_ps(v, s));
        }
      }
      int64_t r = g0;
      for (; r + R <= g1; r += R) {
        fp8_rows<R, T>(wdata + r * K + c0, K, xs, kc, n, part);
        store_rows<R, T>(part, task.y + t0 * task.ldy, task.ldy, r, c0 == 0);
      }
      for (; r < g1; ++r) {
        fp8_rows<1, T>(wdata + r * K + c0, K, xs, kc, n, part);
        store_rows<1, T>(part, task.y + t0 * task.ldy, task.ldy, r, c0 == 0);
      }
    }
    g0 = g1;
  }
}

// ---- MXFP4 ----

template <int R, int T>
void fp4_rows(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, const float* xs,
              int64_t ldxs, int64_t n, float* out) {
  const int64_t bytes = n / 2, n_chunks = (bytes + 31) / 32;
  const int64_t n_full = bytes / 32;  // the rest (a partial chunk) goes through a padded copy
  const int64_t n_scales = (n + 31) / 32;
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  auto chunk = [&](int r, int64_t c, const uint8_t* p) {
    __m256 v[8];
    fp4_decode(p, v);
    const uint8_t* sr = s + r * lds + 2 * c;
    const __m256 sv = fp4_chunk_scales(sr[0], 2 * c + 1 < n_scales ? sr[1] : 0);
    const float* x0 = xs + c * 64;
    if constexpr (T == 1) {
      __m256 a = _mm256_mul_ps(v[0], _mm256_load_ps(x0));
      __m256 b = _mm256_mul_ps(v[1], _mm256_load_ps(x0 + 8));
      for (int j = 2; j < 8; j += 2) {
        a = _mm256_fmadd_ps(v[j], _mm256_load_ps(x0 + 8 * j), a);
        b = _mm256_fmadd_ps(v[j + 1], _mm256_load_ps(x0 + 8 * j + 8), b);
      }
      acc[r][0] = _mm256_fmadd_ps(_mm256_add_ps(a, b), sv, acc[r][0]);
    } else {
      for (int j = 0; j < 8; ++j) v[j] = _mm256_mul_ps(v[j], sv);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const float* x = x0 + t * ldxs;
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          acc[r][t] = _mm256_fmadd_ps(v[j], _mm256_load_ps(x + 8 * j), acc[r][t]);
        }
      }
    }
  };
  for (int64_t c = 0; c < n_full; ++c) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      if ((c & 1) == 0) prefetch_next_group(w + r * ldw + 32 * c, R * ldw);
      chunk(r, c, w + r * ldw + 32 * c);
    }
  }
  for (int64_t c = n_full; c < n_chunks; ++c) {
    for (int r = 0; r < R; ++r) {
      alignas(32) uint8_t tail[32] = {};
      std::memcpy(tail, w + r * ldw + 32 * c, static_cast<size_t>(bytes - 32 * c));
      chunk(r, c, tail);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) out[r * T + t] = hsum(acc[r][t]);
  }
}

// xs[c + i] = x[c + fp4_order[i]] for each 64-element chunk c of x[0..n), zero padded.
void fp4_prepare(const float* x, int64_t n, float* xs) {
  for (int64_t c = 0; c < n; c += 64) {
    for (int i = 0; i < 64; ++i) {
      const int64_t e = c + kFp4Order.at[i];
      xs[c + i] = e < n ? x[e] : 0.0f;
    }
  }
}

template <int T>
void fp4_group(const MatmulTask& task, int64_t t0, int64_t r0, int64_t r1) {
  constexpr int R = T == 1 ? 2 : 1;  // 8 decoded vectors + accumulators
  alignas(32) float xs[kPrepFloats];
  float part[R * T];
  const int64_t K = task.w.cols, kc = pass_cols(T);
  const int64_t ldw = K / 2, lds = (K + 31) / 32;
  const auto* wdata = static_cast<const uint8_t*>(task.w.data);
  for (int64_t c0 = 0; c0 < K; c0 += kc) {
    const int64_t n = min64(kc, K - c0);
    for (int t = 0; t < T; ++t) fp4_prepare(task.x + (t0 + t) * task.ldx + c0, n, xs + t * kc);
    const uint8_t* wp = wdata + c0 / 2;
    const uint8_t* sp = task.w.scales + c0 / 32;
    int64_t r = r0;
    for (; r + R <= r1; r += R) {
      fp4_rows<R, T>(wp + r * ldw, ldw, sp + r * lds, lds, xs, kc, n, part);
      store_rows<R, T>(part, task.y + t0 * task.ldy, task.ldy, r, c0 == 0);
    }
    for (; r < r1; ++r) {
      fp4_rows<1, T>(wp + r * ldw, ldw, sp + r * lds, lds, xs, kc, n, part);
      store_rows<1, T>(part, task.y + t0 * task.ldy, task.ldy, r, c0 == 0);
    }
  }
}

using GroupFn = void (*)(const MatmulTask&, int64_t, int64_t, int64_t);

// As in avx512_gemv.cpp: token groups, rows in L2-sized blocks when there are several groups.
void run_groups(const MatmulTask& task, int64_t r0, int64_t r1, const GroupFn fns[kMaxTokens],
                int64_t row_bytes) {
  int64_t block = kRowBlockBytes / row_bytes / 128 * 128;
  if (block < 128) block = 128;
  for (int64_t b0 = r0; b0 < r1;) {
    const int64_t aligned_end = task.m <= kMaxTokens ? r1 : (b0 / 128 * 128) + block;
    const int64_t b1 = aligned_end < r1 ? aligned_end : r1;
    for (int64_t t0 = 0; t0 < task.m; t0 += kMaxTokens) {
      const int64_t left = task.m - t0;
      fns[(left < kMaxTokens ? left : kMaxTokens) - 1](task, t0, b0, b1);
    }
    b0 = b1;
  }
}

}  // namespace

void matmul_fp8(const MatmulTask& task, int64_t r0, int64_t r1) {
  if (task.m >= kGemmMinTokens) {
    gemm_many_tokens(task, r0, r1);
    return;
  }
  static constexpr GroupFn kFns[kMaxTokens] = {fp8_group<1>, fp8_group<2>, fp8_group<3>,
                                               fp8_group<4>};
  run_groups(task, r0, r1, kFns, task.w.cols);
}

void matmul_mxfp4(const MatmulTask& task, int64_t r0, int64_t r1) {
  if (task.m >= kGemmMinTokens) {
    gemm_many_tokens(task, r0, r1);
    return;
  }
  static constexpr GroupFn kFns[kMaxTokens] = {fp4_group<1>, fp4_group<2>, fp4_group<3>,
                                               fp4_group<4>};
  run_groups(task, r0, r1, kFns, task.w.cols / 2 + task.w.cols / 32 + 1);
}

}  // namespace frugal::kernels::avx2
