// y = x W^T for many tokens (prefill, large MoE groups): compute-bound, so each weight is decoded
// once per call. A tile of kGemmRows rows (two vectors) x kGemmCols columns is decoded exactly to
// f32 and stored transposed (column k holds the tile rows' weights), then a register-blocked
// kernel of kGemmTokens tokens x kGemmRows rows accumulates y[t][rows] += x[t][k] * tile[k] with
// broadcasts of x: 2 * kGemmTokens accumulators, no horizontal sums. f32 accumulation in column
// order within a tile; tiles are added into y. Written once against the target vocabulary.
#include "kernels/simd/matmul.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {
namespace {

using namespace matmul_detail;
using quant::WeightFormat;

constexpr int kRows = kGemmRows;
constexpr int64_t kCols = kGemmCols;
static_assert(kRows == 2 * kLanes, "tile_tokens holds two vectors of rows");
static_assert(kCols % 128 == 0, "tiles start on FP8 scale blocks");

// out[0..n) = W[row, c0 .. c0 + n), exact; c0 is a multiple of kCols, n <= kCols.
void decode_row(const quant::WeightView& w, int64_t row, int64_t c0, int64_t n, float* out) {
  int64_t k = 0;
  switch (w.format) {
    case WeightFormat::kF32: {
      const float* src = static_cast<const float*>(w.data) + row * w.cols + c0;
      for (; k < n; k += kLanes) store_n(out + k, load_n(src + k, n - k), n - k);
      return;
    }
    case WeightFormat::kBF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + row * w.cols + c0;
      for (; k < n; k += kLanes) store_n(out + k, load_bf16_n(src + k, n - k), n - k);
      return;
    }
    case WeightFormat::kFP8Block: {
      // 4 * kLanes codes at a time: inside one 128-column scale block, as c0 is aligned.
      constexpr int64_t kStep = 4 * kLanes;
      const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * w.cols + c0;
      const uint8_t* srow = w.scales + (row / 128) * ((w.cols + 127) / 128);
      for (; k < n; k += kStep) {
        const VF s = set1(e8m0_f32(srow[(c0 + k) / 128]) * 256.0f);
        VF v[4];
        if (k + kStep <= n) {
          fp8_decode4(src + k, v);
        } else {
          fp8_decode4_n(src + k, n - k, v);
        }
        for (int q = 0; q < 4; ++q) {
          store_n(out + k + kLanes * q, mul(v[q], s), n - k - kLanes * q);
        }
      }
      return;
    }
    case WeightFormat::kMXFP4: {
      // 2 * kLanes elements (kLanes bytes) at a time, in memory order; the rest one by one.
      const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * (w.cols / 2) + c0 / 2;
      const uint8_t* srow = w.scales + row * ((w.cols + 31) / 32) + c0 / 32;
      for (; k + 2 * kLanes <= n; k += 2 * kLanes) {
        VF v[2];
        fp4_decode_seq(src + k / 2, v);
        const VF s = set1(e8m0_f32(srow[k / 32]));
        storeu(out + k, mul(v[0], s));
        storeu(out + k + kLanes, mul(v[1], s));
      }
      for (; k < n; ++k) {
        const uint8_t byte = src[k / 2];
        out[k] = fp4_value((k & 1) ? byte >> 4 : byte & 15) * e8m0_f32(srow[k / 32]);
      }
      return;
    }
  }
}

// tile[k * kRows + r] = W[r0 + r, c0 + k] for r < nr, 0 for the rows past nr; k < n rounded up
// to kLanes (the columns past n hold zeros). Rows are decoded kLanes at a time, then transposed.
void decode_tile(const quant::WeightView& w, int64_t r0, int nr, int64_t c0, int64_t n,
                 float* tile) {
  alignas(64) float rows[kLanes * kCols];
  const int64_t npad = (n + kLanes - 1) / kLanes * kLanes;
  for (int half = 0; half < kRows / kLanes; ++half) {
    for (int r = 0; r < kLanes; ++r) {
      float* dst = rows + r * kCols;
      const int rr = kLanes * half + r;
      int64_t k = 0;
      if (rr < nr) {
        decode_row(w, r0 + rr, c0, n, dst);
        k = n;
      }
      for (; k < npad; ++k) dst[k] = 0.0f;
    }
    for (int64_t kb = 0; kb < npad; kb += kLanes) {
      VF v[kLanes];
      for (int r = 0; r < kLanes; ++r) v[r] = load(rows + r * kCols + kb);
      transpose(v);
      for (int j = 0; j < kLanes; ++j) store(tile + (kb + j) * kRows + kLanes * half, v[j]);
    }
  }
}

// y[t, 0..nr) (+)= sum_k x[t, k] * tile[k] for T tokens.
template <int T>
void tile_tokens(const float* tile, int64_t n, const float* x, int64_t ldx, float* y, int64_t ldy,
                 int nr, bool first) {
  VF acc[T][2];
  for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = zero();
  for (int64_t k = 0; k < n; ++k) {
    const VF w0 = load(tile + k * kRows), w1 = load(tile + k * kRows + kLanes);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const VF xv = set1(x[t * ldx + k]);
      acc[t][0] = fmadd(xv, w0, acc[t][0]);
      acc[t][1] = fmadd(xv, w1, acc[t][1]);
    }
  }
  for (int t = 0; t < T; ++t) {
    float* dst = y + t * ldy;
    if (!first) {
      acc[t][0] = add(acc[t][0], load_n(dst, nr));
      acc[t][1] = add(acc[t][1], load_n(dst + kLanes, nr - kLanes));
    }
    store_n(dst, acc[t][0], nr);
    store_n(dst + kLanes, acc[t][1], nr - kLanes);
  }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int, bool);

template <int... I>
constexpr std::array<TileFn, sizeof...(I)> tile_fns(std::integer_sequence<int, I...>) {
  return {&tile_tokens<I + 1>...};
}
constexpr auto kTileFns = tile_fns(std::make_integer_sequence<int, kGemmTokens>());

}  // namespace

void gemm_many_tokens(const MatmulTask& task, int64_t r0, int64_t r1) {
  alignas(64) float tile[kCols * kRows];
  const int64_t K = task.w.cols;
  for (int64_t rb = r0; rb < r1; rb += kRows) {
    const int nr = static_cast<int>(r1 - rb < kRows ? r1 - rb : kRows);
    for (int64_t c0 = 0; c0 < K; c0 += kCols) {
      const int64_t n = min64(K - c0, kCols);
      decode_tile(task.w, rb, nr, c0, n, tile);
      for (int64_t t0 = 0; t0 < task.m; t0 += kGemmTokens) {
        const int64_t left = task.m - t0;
        kTileFns[(left < kGemmTokens ? left : kGemmTokens) - 1](
            tile, n, task.x + t0 * task.ldx + c0, task.ldx, task.y + t0 * task.ldy + rb, task.ldy,
            nr, c0 == 0);
      }
    }
  }
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
