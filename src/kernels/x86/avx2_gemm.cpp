// AVX2 y = x W^T for many tokens (design of avx512_gemm.cpp at 8 lanes): a tile of 16 rows x 256
// columns is decoded exactly to f32 once and stored transposed, then 6 tokens x 16 rows of
// accumulators (12 of the 16 ymm registers) take broadcasts of x. FP8 and MXFP4 rows are decoded
// with the GEMV's vector decoders (a scalar decode made m = 64 run at a third of m = 512).
#include "kernels/x86/avx2_common.h"
#include "kernels/x86/x86.h"

namespace frugal::kernels::avx2 {
namespace {

constexpr int kRows = 16;
constexpr int64_t kCols = 256;
constexpr int kTokens = 6;

using quant::WeightFormat;

float bf16_value(uint16_t b) { return __builtin_bit_cast(float, static_cast<uint32_t>(b) << 16); }

// col[k * kRows] = W[row, c0 + k] for k < n (exact), with the GEMV's vector decoders: the
// block-scaled rows are decoded 16 (FP8) or 64 (MXFP4) values at a time. c0 is a multiple of kCols.
void decode_fp8_row(const quant::WeightView& w, int64_t row, int64_t c0, int64_t n, float* col) {
  const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * w.cols + c0;
  const uint8_t* srow = w.scales + (row / 128) * ((w.cols + 127) / 128);
  alignas(32) float v[16];
  for (int64_t k = 0; k < n; k += 16) {
    alignas(16) uint8_t tail[16] = {};
    const uint8_t* p = src + k;
    if (n - k < 16) {
      for (int64_t i = 0; i < n - k; ++i) tail[i] = p[i];
      p = tail;
    }
    __m256 lo, hi;  // values * 2^-8
    fp8x16_to_f32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), &lo, &hi);
    // * 2^8 (exact) then * the block scale: one rounding, as value * scale
    const __m256 up = _mm256_set1_ps(256.0f);
    const __m256 s = _mm256_set1_ps(e8m0_f32(srow[(c0 + k) / 128]));
    _mm256_store_ps(v, _mm256_mul_ps(_mm256_mul_ps(lo, up), s));
    _mm256_store_ps(v + 8, _mm256_mul_ps(_mm256_mul_ps(hi, up), s));
    for (int64_t i = 0; i < 16 && k + i < n; ++i) col[(k + i) * kRows] = v[i];
  }
}

void decode_fp4_row(const quant::WeightView& w, int64_t row, int64_t c0, int64_t n, float* col) {
  const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * (w.cols / 2) + c0 / 2;
  const uint8_t* srow = w.scales + row * ((w.cols + 31) / 32) + c0 / 32;
  const int64_t n_scales = (n + 31) / 32;
  alignas(32) float v[64];
  for (int64_t k = 0; k < n; k += 64) {
    alignas(32) uint8_t tail[32] = {};
    const uint8_t* p = src + k / 2;
    if (n - k < 64) {
      for (int64_t i = 0; i < (n - k + 1) / 2; ++i) tail[i] = p[i];
      p = tail;
    }
    __m256 d[8];
    fp4_decode(p, d);
    const int64_t sb = k / 32;
    const __m256 sv = fp4_chunk_scales(srow[sb], sb + 1 < n_scales ? srow[sb + 1] : 0);
    for (int j = 0; j < 8; ++j) _mm256_store_ps(v + 8 * j, _mm256_mul_ps(d[j], sv));
    for (int i = 0; i < 64; ++i) {
      const int64_t e = k + kFp4Order.at[i];
      if (e < n) col[e * kRows] = v[i];
    }
  }
}

// tile[k * kRows + r] = W[r0 + r, c0 + k] (exact) for r < nr, 0 past nr; c0 is a multiple of kCols.
void decode_tile(const quant::WeightView& w, int64_t r0, int nr, int64_t c0, int64_t n,
                 float* tile) {
  for (int r = 0; r < kRows; ++r) {
    float* col = tile + r;
    if (r >= nr) {
      for (int64_t k = 0; k < n; ++k) col[k * kRows] = 0.0f;
      continue;
    }
    const int64_t row = r0 + r;
    switch (w.format) {
      case WeightFormat::kF32: {
        const float* src = static_cast<const float*>(w.data) + row * w.cols + c0;
        for (int64_t k = 0; k < n; ++k) col[k * kRows] = src[k];
        break;
      }
      case WeightFormat::kBF16: {
        const uint16_t* src = static_cast<const uint16_t*>(w.data) + row * w.cols + c0;
        for (int64_t k = 0; k < n; ++k) col[k * kRows] = bf16_value(src[k]);
        break;
      }
      case WeightFormat::kFP8Block:
        decode_fp8_row(w, row, c0, n, col);
        break;
      case WeightFormat::kMXFP4:
        decode_fp4_row(w, row, c0, n, col);
        break;
    }
  }
}

// y[t, 0..nr) (+)= sum_k x[t, k] * tile[k] for T tokens.
template <int T>
void tile_tokens(const float* tile, int64_t n, const float* x, int64_t ldx, float* y, int64_t ldy,
                 int nr, bool first) {
  __m256 acc[T][2];
  for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < n; ++k) {
    const __m256 w0 = _mm256_load_ps(tile + k * kRows), w1 = _mm256_load_ps(tile + k * kRows + 8);
#pragma GCC unroll 6
    for (int t = 0; t < T; ++t) {
      const __m256 xv = _mm256_broadcast_ss(x + t * ldx + k);
      acc[t][0] = _mm256_fmadd_ps(xv, w0, acc[t][0]);
      acc[t][1] = _mm256_fmadd_ps(xv, w1, acc[t][1]);
    }
  }
  const __m256i m0 = lanes8(nr), m1 = lanes8(nr - 8);
  for (int t = 0; t < T; ++t) {
    float* dst = y + t * ldy;
    if (!first) {
      acc[t][0] = _mm256_add_ps(acc[t][0], _mm256_maskload_ps(dst, m0));
      acc[t][1] = _mm256_add_ps(acc[t][1], _mm256_maskload_ps(dst + 8, m1));
    }
    _mm256_maskstore_ps(dst, m0, acc[t][0]);
    _mm256_maskstore_ps(dst + 8, m1, acc[t][1]);
  }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int, bool);
constexpr TileFn kTileFns[kTokens] = {tile_tokens<1>, tile_tokens<2>, tile_tokens<3>,
                                      tile_tokens<4>, tile_tokens<5>, tile_tokens<6>};

}  // namespace

void gemm_many_tokens(const MatmulTask& task, int64_t r0, int64_t r1) {
  alignas(32) float tile[kCols * kRows];  // 16 KiB
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

}  // namespace frugal::kernels::avx2
