// AVX2 y = x W^T for many tokens (design of avx512_gemm.cpp at 8 lanes): a tile of 16 rows x 256
// columns is decoded exactly to f32 once and stored transposed, then 6 tokens x 16 rows of
// accumulators (12 of the 16 ymm registers) take broadcasts of x. The tile decode is mostly
// scalar: at these token counts it is a small part of the work.
#include "kernels/x86/avx2_common.h"
#include "kernels/x86/x86.h"

namespace frugal::kernels::avx2 {
namespace {

constexpr int kRows = 16;
constexpr int64_t kCols = 256;
constexpr int kTokens = 6;

using quant::WeightFormat;

float fp8_value(uint8_t code) {  // e4m3fn, finite codes
  const uint32_t exp = (code >> 3) & 0xf, man = code & 7;
  const float mag = exp == 0 ? static_cast<float>(man) * 0x1p-9f
                             : __builtin_bit_cast(float, ((exp + 120) << 23) | (man << 20));
  return (code & 0x80) ? -mag : mag;
}

float fp4_value(uint8_t nibble) {
  static constexpr float kMag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  return (nibble & 8) ? -kMag[nibble & 7] : kMag[nibble & 7];
}

float bf16_value(uint16_t b) { return __builtin_bit_cast(float, static_cast<uint32_t>(b) << 16); }

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
      case WeightFormat::kFP8Block: {
        const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * w.cols + c0;
        const uint8_t* srow = w.scales + (row / 128) * ((w.cols + 127) / 128);
        for (int64_t k = 0; k < n; ++k) {
          col[k * kRows] = fp8_value(src[k]) * e8m0_f32(srow[(c0 + k) / 128]);
        }
        break;
      }
      case WeightFormat::kMXFP4: {
        const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * (w.cols / 2) + c0 / 2;
        const uint8_t* srow = w.scales + row * ((w.cols + 31) / 32) + c0 / 32;
        for (int64_t k = 0; k < n; ++k) {
          const uint8_t b = src[k / 2];
          col[k * kRows] = fp4_value((k & 1) ? b >> 4 : b & 15) * e8m0_f32(srow[k / 32]);
        }
        break;
      }
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
