// AVX-512 y = x W^T for many tokens (prefill, large MoE groups): compute-bound, so each weight is
// decoded once per call. A tile of 32 rows x 256 columns is decoded exactly to f32 and stored
// transposed (column k holds the 32 rows' weights: two vectors), then a register-blocked kernel
// of 12 tokens x 32 rows accumulates y[t][rows] += x[t][k] * tile[k] with broadcasts of x: 24
// accumulators, 14 loads per 24 FMAs, and no horizontal sums. f32 accumulation in column order
// within a tile; tiles are added into y.
#include "kernels/x86/avx512_common.h"
#include "kernels/x86/x86.h"

namespace frugal::kernels::avx512 {
namespace {

constexpr int kRows = 32;       // rows per tile (two vectors)
constexpr int64_t kCols = 256;  // columns per tile (a multiple of the 128 / 32 scale blocks)
constexpr int kTokens = 12;     // tokens per register block

using quant::WeightFormat;

float fp8_value(uint8_t code) {  // e4m3fn, finite codes (NaN codes are rejected at load)
  const uint32_t exp = (code >> 3) & 0xf, man = code & 7;
  const float mag = exp == 0 ? static_cast<float>(man) * 0x1p-9f
                             : __builtin_bit_cast(float, ((exp + 120) << 23) | (man << 20));
  return (code & 0x80) ? -mag : mag;
}

float fp4_value(uint8_t nibble) {
  static constexpr float kMag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  return (nibble & 8) ? -kMag[nibble & 7] : kMag[nibble & 7];
}

// out[0..n) = W[row, c0 .. c0 + n), exact; c0 is a multiple of kCols.
void decode_row(const quant::WeightView& w, int64_t row, int64_t c0, int64_t n, float* out) {
  int64_t k = 0;
  switch (w.format) {
    case WeightFormat::kF32: {
      const float* src = static_cast<const float*>(w.data) + row * w.cols + c0;
      for (; k < n; k += 16) {
        const __mmask16 m = lanes16(n - k);
        _mm512_mask_storeu_ps(out + k, m, _mm512_maskz_loadu_ps(m, src + k));
      }
      return;
    }
    case WeightFormat::kBF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + row * w.cols + c0;
      for (; k < n; k += 16) {
        const __mmask16 m = lanes16(n - k);
        const __m256i h = _mm256_maskz_loadu_epi16(m, src + k);
        _mm512_mask_storeu_ps(out + k, m,
                              _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
      }
      return;
    }
    case WeightFormat::kFP8Block: {
      const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * w.cols + c0;
      const uint8_t* srow = w.scales + (row / 128) * ((w.cols + 127) / 128);
      for (; k + 32 <= n; k += 32) {
        const __m512 s = _mm512_set1_ps(e8m0_f32(srow[(c0 + k) / 128]) * 256.0f);
        __m512 lo, hi;
        fp8x32_to_f32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + k)), &lo, &hi);
        _mm512_storeu_ps(out + k, _mm512_mul_ps(lo, s));
        _mm512_storeu_ps(out + k + 16, _mm512_mul_ps(hi, s));
      }
      for (; k < n; ++k) out[k] = fp8_value(src[k]) * e8m0_f32(srow[(c0 + k) / 128]);
      return;
    }
    case WeightFormat::kMXFP4: {
      const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * (w.cols / 2) + c0 / 2;
      const uint8_t* srow = w.scales + row * ((w.cols + 31) / 32) + c0 / 32;
      const __m512 tab = fp4_table();
      // Even elements from the low nibbles, odd from the high; interleaved back in order.
      const __m512i lo_idx =
          _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const __m512i hi_idx =
          _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      for (; k + 32 <= n; k += 32) {
        const __m512i b =
            _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k / 2)));
        const __m512 ev = _mm512_permutexvar_ps(b, tab);
        const __m512 od = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), tab);
        const __m512 s = _mm512_set1_ps(e8m0_f32(srow[k / 32]));
        _mm512_storeu_ps(out + k, _mm512_mul_ps(_mm512_permutex2var_ps(ev, lo_idx, od), s));
        _mm512_storeu_ps(out + k + 16, _mm512_mul_ps(_mm512_permutex2var_ps(ev, hi_idx, od), s));
      }
      for (; k < n; ++k) {
        const uint8_t byte = src[k / 2];
        out[k] = fp4_value((k & 1) ? byte >> 4 : byte & 15) * e8m0_f32(srow[k / 32]);
      }
      return;
    }
  }
}

// In-register transpose of a 16 x 16 block (unpack pairs, then 64-bit pairs, then 128-bit lanes
// twice).
FRUGAL_AVX512_INLINE void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0xee);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
  }
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0x88);
      t[8 * i + j + 4] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0xdd);
    }
  }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
  }
}

// tile[k * kRows + r] = W[r0 + r, c0 + k] for r < nr, 0 for the rows past nr; k < n rounded up
// to 16 (the columns past n hold zeros). Rows are decoded 16 at a time, then transposed.
void decode_tile(const quant::WeightView& w, int64_t r0, int nr, int64_t c0, int64_t n,
                 float* tile) {
  alignas(64) float rows[16 * kCols];
  const int64_t npad = (n + 15) / 16 * 16;
  for (int half = 0; half < 2; ++half) {
    for (int r = 0; r < 16; ++r) {
      float* dst = rows + r * kCols;
      const int rr = 16 * half + r;
      int64_t k = 0;
      if (rr < nr) {
        decode_row(w, r0 + rr, c0, n, dst);
        k = n;
      }
      for (; k < npad; ++k) dst[k] = 0.0f;
    }
    for (int64_t kb = 0; kb < npad; kb += 16) {
      __m512 v[16];
      for (int r = 0; r < 16; ++r) v[r] = _mm512_load_ps(rows + r * kCols + kb);
      transpose16(v);
      for (int j = 0; j < 16; ++j) _mm512_store_ps(tile + (kb + j) * kRows + 16 * half, v[j]);
    }
  }
}

// y[t, 0..nr) (+)= sum_k x[t, k] * tile[k] for T tokens.
template <int T>
void tile_tokens(const float* tile, int64_t n, const float* x, int64_t ldx, float* y, int64_t ldy,
                 int nr, bool first) {
  __m512 acc[T][2];
  for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < n; ++k) {
    const __m512 w0 = _mm512_load_ps(tile + k * kRows), w1 = _mm512_load_ps(tile + k * kRows + 16);
#pragma GCC unroll 12
    for (int t = 0; t < T; ++t) {
      const __m512 xv = _mm512_set1_ps(x[t * ldx + k]);
      acc[t][0] = _mm512_fmadd_ps(xv, w0, acc[t][0]);
      acc[t][1] = _mm512_fmadd_ps(xv, w1, acc[t][1]);
    }
  }
  const __mmask16 m0 = lanes16(nr), m1 = lanes16(nr - 16);
  for (int t = 0; t < T; ++t) {
    float* dst = y + t * ldy;
    if (!first) {
      acc[t][0] = _mm512_add_ps(acc[t][0], _mm512_maskz_loadu_ps(m0, dst));
      acc[t][1] = _mm512_add_ps(acc[t][1], _mm512_maskz_loadu_ps(m1, dst + 16));
    }
    _mm512_mask_storeu_ps(dst, m0, acc[t][0]);
    _mm512_mask_storeu_ps(dst + 16, m1, acc[t][1]);
  }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int, bool);
constexpr TileFn kTileFns[kTokens] = {tile_tokens<1>,  tile_tokens<2>,  tile_tokens<3>,
                                      tile_tokens<4>,  tile_tokens<5>,  tile_tokens<6>,
                                      tile_tokens<7>,  tile_tokens<8>,  tile_tokens<9>,
                                      tile_tokens<10>, tile_tokens<11>, tile_tokens<12>};

}  // namespace

void gemm_many_tokens(const MatmulTask& task, int64_t r0, int64_t r1) {
  alignas(64) float tile[kCols * kRows];  // 32 KiB
  const int64_t K = task.w.cols;
  for (int64_t rb = r0; rb < r1; rb += kRows) {
    const int nr = static_cast<int>(r1 - rb < kRows ? r1 - rb : kRows);
    for (int64_t c0 = 0; c0 < K; c0 += kCols) {
      const int64_t n = K - c0 < kCols ? K - c0 : kCols;
      decode_tile(task.w, rb, nr, c0, n, tile);
      for (int64_t t0 = 0; t0 < task.m; t0 += kTokens) {
        const int64_t left = task.m - t0;
        kTileFns[(left < kTokens ? left : kTokens) - 1](tile, n, task.x + t0 * task.ldx + c0,
                                                        task.ldx, task.y + t0 * task.ldy + rb,
                                                        task.ldy, nr, c0 == 0);
      }
    }
  }
}

}  // namespace frugal::kernels::avx512
