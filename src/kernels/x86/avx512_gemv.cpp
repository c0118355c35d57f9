// AVX-512 y = x W^T for the block-scaled formats (FP8 e4m3 128x128, MXFP4 e2m1 1x32), for decode
// (m = 1, memory-bound: the target is the machine's read bandwidth) and small token groups.
//
// Weights are decoded in registers and never written out. Up to kMaxTokens tokens share each
// decoded vector; x is prepared once per pass so the inner loop is decode + FMA only:
//  - FP8: a 128x128 block has one power-of-two scale, so for the 128 rows of a block row x is
//    pre-multiplied by scale * 2^8 (exact) and the e4m3 -> f16 -> f32 decode needs no scaling.
//  - MXFP4: x is permuted into the stride-8 order the nibble decode produces; the per-32 scales
//    are applied per 128-element chunk (one FMA per chunk and row).
// Accumulation is f32; results differ from the scalar oracle only by summation order.
#include "kernels/x86/avx512_common.h"
#include "kernels/x86/x86.h"

namespace frugal::kernels::avx512 {
namespace {

int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Columns per pass for T tokens: the prepared x of T tokens fills kPrepFloats.
int64_t pass_cols(int tokens) {
  const int64_t kc = kPrepFloats / tokens / 128 * 128;
  return kc < 128 ? 128 : kc;
}

// y[t, r] = (first pass ? 0 : y[t, r]) + part[r * T + t] for R rows at r.
template <int R, int T>
FRUGAL_AVX512_INLINE void store_rows(const float* part, float* y, int64_t ldy, int64_t r,
                                     bool first) {
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < T; ++t) {
      float* dst = y + t * ldy + r + i;
      *dst = first ? part[i * T + t] : *dst + part[i * T + t];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// FP8

// R rows of n codes (row stride ldw) against T prepared x rows (stride ldxs, zero padded to a
// multiple of 64): out[r * T + t] = sum_k xs[t][k] * fp8(w[r][k]).
template <int R, int T>
void fp8_rows(const uint8_t* w, int64_t ldw, const float* xs, int64_t ldxs, int64_t n, float* out) {
  __m512 acc[R][T];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  auto step = [&](int r, int64_t k, __m256i c0, __m256i c1) {
    __m512 v[4];
    fp8x32_to_f32(c0, &v[0], &v[1]);
    fp8x32_to_f32(c1, &v[2], &v[3]);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const float* x = xs + t * ldxs + k;
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        acc[r][t] = _mm512_fmadd_ps(v[q], _mm512_load_ps(x + 16 * q), acc[r][t]);
      }
    }
  };
  int64_t k = 0;
  for (; k + 64 <= n; k += 64) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = w + r * ldw + k;
      prefetch_next_group(p, R * ldw);
      step(r, k, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)));
    }
  }
  if (k < n) {  // masked loads: no byte past the row is touched; xs is zero there
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = w + r * ldw + k;
      step(r, k, _mm256_maskz_loadu_epi8(bytes32(n - k), p),
           _mm256_maskz_loadu_epi8(bytes32(n - k - 32), p + 32));
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) out[r * T + t] = hsum(acc[r][t]);
  }
}

template <int T>
void fp8_group(const MatmulTask& task, int64_t t0, int64_t r0, int64_t r1) {
  constexpr int R = T <= 2 ? 4 : 2;
  alignas(64) float xs[kPrepFloats];
  alignas(64) float part[R * T];
  const int64_t K = task.w.cols, kc = pass_cols(T);
  const int64_t scols = (K + 127) / 128;
  const auto* wdata = static_cast<const uint8_t*>(task.w.data);
  for (int64_t g0 = r0; g0 < r1;) {
    const int64_t g = g0 / 128, g1 = min64(r1, (g + 1) * 128);
    const uint8_t* srow = task.w.scales + g * scols;
    for (int64_t c0 = 0; c0 < K; c0 += kc) {
      const int64_t n = min64(kc, K - c0), npad = (n + 63) / 64 * 64;
      for (int t = 0; t < T; ++t) {  // xs[t] = x[t] * 2^8 * block scale, zero padded
        const float* x = task.x + (t0 + t) * task.ldx + c0;
        float* dst = xs + t * kc;
        for (int64_t i = 0; i < npad; i += 16) {
          const __m512 s = _mm512_set1_ps(e8m0_f32(srow[(c0 + i) / 128]) * 256.0f);
          const __m512 v = _mm512_maskz_loadu_ps(lanes16(n - i), x + i);
          _mm512_store_ps(dst + i, _mm512_mul_ps(v, s));
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

// ---------------------------------------------------------------------------------------------
// MXFP4

// Decodes one 128-element chunk from four loads at byte offsets 0..3 of its 64 packed bytes: the
// low byte of dword i of load o is byte 4i + o, whose low nibble (element 8i + 2o) vpermps reads
// from bits 0-3 and whose high nibble (element 8i + 2o + 1) it reads after a shift by 4. Vector
// j = 2o + h therefore holds elements 8i + j (i = 0..15): the "stride-8" order.
FRUGAL_AVX512_INLINE void fp4_decode(const __m512i l[4], __m512 tab, __m512 v[8]) {
#pragma GCC unroll 4
  for (int o = 0; o < 4; ++o) {
    v[2 * o] = _mm512_permutexvar_ps(l[o], tab);
    v[2 * o + 1] = _mm512_permutexvar_ps(_mm512_srli_epi32(l[o], 4), tab);
  }
}

// The MXFP4 offset loads straddle into the next cache line; when that line is still in flight
// from DRAM the split load stalls, which the two-level prefetch (avx512_common.h) avoids.

// Loads for a chunk with nb valid bytes (masked: nothing past them is read).
FRUGAL_AVX512_INLINE void fp4_load_masked(const uint8_t* p, int64_t nb, __m512i l[4]) {
  for (int o = 0; o < 4; ++o) l[o] = _mm512_maskz_loadu_epi8(bytes64(nb - o), p + o);
}
// Full chunk: the offset loads read up to 3 bytes past it (unused lanes' upper bytes); callers
// only use this when those bytes exist.
FRUGAL_AVX512_INLINE void fp4_load(const uint8_t* p, __m512i l[4]) {
  for (int o = 0; o < 4; ++o) l[o] = _mm512_loadu_si512(p + o);
}

// The e8m0 scales of chunks 4q .. 4q + 3 (16 codes, fewer at the row's end) as f32.
FRUGAL_AVX512_INLINE __m512 fp4_scales16(const uint8_t* s, int64_t n) {
  const __m128i codes = _mm_maskz_loadu_epi8(static_cast<__mmask16>(lanes16(n)), s);
  __m512i e = _mm512_slli_epi32(_mm512_cvtepu8_epi32(codes), 23);
  e = _mm512_max_epu32(e, _mm512_set1_epi32(0x00400000));  // code 0 -> 2^-127
  return _mm512_castsi512_ps(e);
}

// Lane i of chunk c's scale vector is the scale of block i / 4 of the chunk: picked from the
// 16 scales of its group of four chunks.
FRUGAL_AVX512_INLINE __m512 fp4_chunk_scale(__m512 s16, int64_t c) {
  alignas(64) static constexpr int32_t kIdx[4][16] = {
      {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3},
      {4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7},
      {8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11},
      {12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15}};
  return _mm512_permutexvar_ps(_mm512_load_si512(kIdx[c & 3]), s16);
}

// R rows, one pass of n elements (n even) starting at packed byte pointer w (row stride ldw bytes)
// and scale pointer s (row stride lds). `end_of_row`: the pass ends at the row's end (else it is
// a whole number of chunks with more of the row after it).
template <int R, int T>
void fp4_rows(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, const float* xs,
              int64_t ldxs, int64_t n, bool end_of_row, float* out) {
  const __m512 tab = fp4_table();
  const int64_t bytes = n / 2, n_chunks = (bytes + 63) / 64;
  // Plain loads read up to 3 bytes past their chunk: at the row's end only chunks with 3 more
  // bytes after them may use them; the rest are loaded masked.
  const int64_t n_plain = end_of_row ? (bytes >= 3 ? (bytes - 3) / 64 : 0) : n_chunks;
  const int64_t n_scales = (n + 31) / 32;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  __m512 s16[R];
  // Chunk c of all R rows from their offset loads l (fp4_decode's order): every x vector loaded
  // is used by all R rows.
  auto chunk = [&](int64_t c, const __m512i l[R][4]) {
    __m512 sv[R];
    for (int r = 0; r < R; ++r) {
      if ((c & 3) == 0) s16[r] = fp4_scales16(s + r * lds + 4 * c, n_scales - 4 * c);
      sv[r] = fp4_chunk_scale(s16[r], c);
    }
    const float* x0 = xs + c * 128;
    if constexpr (T == 1) {
      __m512 v[R][8];
      for (int r = 0; r < R; ++r) fp4_decode(l[r], tab, v[r]);
      // Two chains per row, then one FMA applies the row's four block scales.
      __m512 a[R], b[R];
      const __m512 xa = _mm512_load_ps(x0), xb = _mm512_load_ps(x0 + 16);
      for (int r = 0; r < R; ++r) {
        a[r] = _mm512_mul_ps(v[r][0], xa);
        b[r] = _mm512_mul_ps(v[r][1], xb);
      }
#pragma GCC unroll 3
      for (int j = 2; j < 8; j += 2) {
        const __m512 xj = _mm512_load_ps(x0 + 16 * j), xk = _mm512_load_ps(x0 + 16 * j + 16);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          a[r] = _mm512_fmadd_ps(v[r][j], xj, a[r]);
          b[r] = _mm512_fmadd_ps(v[r][j + 1], xk, b[r]);
        }
      }
      for (int r = 0; r < R; ++r) {
        acc[r][0] = _mm512_fmadd_ps(_mm512_add_ps(a[r], b[r]), sv[r], acc[r][0]);
      }
    } else {
      // Vector index j outermost: one decoded vector per row is live, so the R x T accumulators
      // fit in the 32 registers next to the offset loads; each x vector serves all R rows.
      // Measured (kernels_bench BM_Matmul/mxfp4, 2 threads): m = 4 148 -> 178 GFLOP/s.
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        __m512 v[R];
        for (int r = 0; r < R; ++r) {
          const __m512i idx = (j & 1) ? _mm512_srli_epi32(l[r][j / 2], 4) : l[r][j / 2];
          v[r] = _mm512_mul_ps(_mm512_permutexvar_ps(idx, tab), sv[r]);
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m512 xj = _mm512_load_ps(x0 + t * ldxs + 16 * j);
#pragma GCC unroll 4
          for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(v[r], xj, acc[r][t]);
        }
      }
    }
  };
  for (int64_t c = 0; c < n_plain; ++c) {
    __m512i l[R][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      prefetch_two_level(w + r * ldw + 64 * c, R * ldw);
      fp4_load(w + r * ldw + 64 * c, l[r]);
    }
    chunk(c, l);
  }
  for (int64_t c = n_plain; c < n_chunks; ++c) {
    __m512i l[R][4];
    for (int r = 0; r < R; ++r) fp4_load_masked(w + r * ldw + 64 * c, bytes - 64 * c, l[r]);
    chunk(c, l);
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) out[r * T + t] = hsum(acc[r][t]);
  }
}

// xs[j * 16 + i] = x[8i + j] for each 128-element chunk of x[0..n), zero padded.
void fp4_prepare(const float* x, int64_t n, float* xs) {
  const __m512i idx =
      _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
  for (int64_t c = 0; c < n; c += 128) {
    alignas(64) float tail[128];
    const float* src = x + c;
    if (n - c < 128) {
      for (int64_t i = 0; i < 128; ++i) tail[i] = c + i < n ? x[c + i] : 0.0f;
      src = tail;
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      _mm512_store_ps(xs + c + 16 * j, _mm512_i32gather_ps(idx, src + j, 4));
    }
  }
}

template <int T>
void fp4_group(const MatmulTask& task, int64_t t0, int64_t r0, int64_t r1) {
  constexpr int R = T <= 4 ? 2 : 1;
  alignas(64) float xs[kPrepFloats];
  alignas(64) float part[R * T];
  const int64_t K = task.w.cols, kc = pass_cols(T);
  const int64_t ldw = K / 2, lds = (K + 31) / 32;
  const auto* wdata = static_cast<const uint8_t*>(task.w.data);
  for (int64_t c0 = 0; c0 < K; c0 += kc) {
    const int64_t n = min64(kc, K - c0);
    for (int t = 0; t < T; ++t) fp4_prepare(task.x + (t0 + t) * task.ldx + c0, n, xs + t * kc);
    const bool end = c0 + n == K;
    const uint8_t* wp = wdata + c0 / 2;
    const uint8_t* sp = task.w.scales + c0 / 32;
    int64_t r = r0;
    for (; r + R <= r1; r += R) {
      fp4_rows<R, T>(wp + r * ldw, ldw, sp + r * lds, lds, xs, kc, n, end, part);
      store_rows<R, T>(part, task.y + t0 * task.ldy, task.ldy, r, c0 == 0);
    }
    for (; r < r1; ++r) {
      fp4_rows<1, T>(wp + r * ldw, ldw, sp + r * lds, lds, xs, kc, n, end, part);
      store_rows<1, T>(part, task.y + t0 * task.ldy, task.ldy, r, c0 == 0);
    }
  }
}

using GroupFn = void (*)(const MatmulTask&, int64_t, int64_t, int64_t);

// Token groups of up to kMaxTokens; with several groups, rows go in L2-sized blocks (multiples
// of 128 rows, aligned, so FP8 scale blocks are not split more than the caller's range does).
void run_groups(const MatmulTask& task, int64_t r0, int64_t r1, const GroupFn fns[kMaxTokens],
                int64_t row_bytes) {
  int64_t block = kRowBlockBytes / row_bytes / 128 * 128;
  if (block < 128) block = 128;
  if (task.m <= kMaxTokens) block = r1 - r0;
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
                                               fp8_group<4>, fp8_group<5>, fp8_group<6>,
                                               fp8_group<7>, fp8_group<8>};
  run_groups(task, r0, r1, kFns, task.w.cols);
}

void matmul_mxfp4(const MatmulTask& task, int64_t r0, int64_t r1) {
  if (task.m >= kGemmMinTokens) {
    gemm_many_tokens(task, r0, r1);
    return;
  }
  static constexpr GroupFn kFns[kMaxTokens] = {fp4_group<1>, fp4_group<2>, fp4_group<3>,
                                               fp4_group<4>, fp4_group<5>, fp4_group<6>,
                                               fp4_group<7>, fp4_group<8>};
  run_groups(task, r0, r1, kFns, task.w.cols / 2 + task.w.cols / 32 + 1);
}

}  // namespace frugal::kernels::avx512
