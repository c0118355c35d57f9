// y = x W^T for many tokens (prefill, large MoE groups): compute-bound, so each weight is decoded
// once per call. Two kernels, written once against the target vocabulary:
//  - the tile (MXFP4: from kMatmul.fp4_klane_max_tokens tokens on): a tile of kGemmRows rows (two
//    vectors) x kGemmCols columns is decoded exactly to f32 and stored transposed (column k holds
//    the tile rows' weights), then a register block of kGemmTokens tokens x kGemmRows rows
//    accumulates y[t][rows] += x[t][k] * tile[k] with broadcasts of x: no horizontal sums, and x
//    is streamed once per tile;
//  - the k-lane GEMM (MXFP4 with fewer tokens: a routed expert's ~12 tokens of a 512-token chunk):
//    rows decoded in memory order (no transpose, which costs more than a few tokens' FMAs), lanes
//    along k, a register block of rows x tokens reduced by a transpose once per pass.
// f32 accumulation; passes / tiles are added into y in column order.
#include "kernels/simd/matmul.h"
#include "quant/weight.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {
namespace {

using namespace matmul_detail;
using quant::WeightFormat;

constexpr int kRows = kGemmRows;
constexpr int64_t kCols = kGemmCols;
static_assert(kRows == 2 * kLanes, "tile_tokens holds two vectors of rows");
static_assert(kCols % 128 == 0, "tiles start on FP8 scale blocks");

// out[0..n) = W[row, c0 .. c0 + n), exact; c0 is a multiple of kCols, n <= kCols. Always inlined
// into its two callers (an out-of-line call per row and tile cost the tile 5-10 % of a 8,192-token
// prefill: the format switch is then taken once per row instead of hoisted).
FRUGAL_SIMD_INLINE void decode_row(const quant::WeightView& w, int64_t row, int64_t c0, int64_t n,
                                   float* out) {
  int64_t k = 0;
  switch (w.format) {
    // Whole vectors with plain loads and stores, then one first-n vector (AVX2's first-n bf16
    // load goes through a stack copy: on every vector it made the bf16 tile 3x slower).
    case WeightFormat::kF32: {
      const float* src = static_cast<const float*>(w.data) + row * w.cols + c0;
      for (; k + kLanes <= n; k += kLanes) storeu(out + k, loadu(src + k));
      if (k < n) store_n(out + k, load_n(src + k, n - k), n - k);
      return;
    }
    case WeightFormat::kBF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + row * w.cols + c0;
      for (; k + kLanes <= n; k += kLanes) storeu(out + k, load_bf16(src + k));
      if (k < n) store_n(out + k, load_bf16_n(src + k, n - k), n - k);
      return;
    }
    case WeightFormat::kFP8Block: {
      // 4 * kLanes codes at a time: inside one 128-column scale block, as c0 is aligned.
      constexpr int64_t kStep = 4 * kLanes;
      const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * w.cols + c0;
      const uint8_t* srow = w.scales + (row / 128) * ((w.cols + 127) / 128);
      for (; k + kStep <= n; k += kStep) {
        const VF s = set1(e8m0_f32(srow[(c0 + k) / 128]) * 256.0f);
        VF v[4];
        fp8_decode4(src + k, v);
        for (int q = 0; q < 4; ++q) storeu(out + k + kLanes * q, mul(v[q], s));
      }
      if (k < n) {  // first-n decode and stores: nothing past the row is read
        const VF s = set1(e8m0_f32(srow[(c0 + k) / 128]) * 256.0f);
        VF v[4];
        fp8_decode4_n(src + k, n - k, v);
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

// Prefetch into L2 the weight bytes (and MXFP4 scales) of rows [r0, r1), columns [c0, c0 + n):
// a pass reads only a few hundred bytes of each row, too short a stream for the hardware
// prefetchers, so the pass after the current one is requested while this one computes.
// (Always inlined: GCC takes a function whose only effect is prefetches for a pure one and drops
// the call.)
FRUGAL_SIMD_INLINE void prefetch_pass(const quant::WeightView& w, int64_t r0, int64_t r1,
                                      int64_t c0, int64_t n) {
  if (n <= 0) return;
  const auto* data = static_cast<const uint8_t*>(w.data);
  const auto bytes = [&](int64_t cols) {
    return static_cast<int64_t>(quant::weight_data_bytes(w.format, 1, cols));
  };
  const int64_t row_bytes = bytes(w.cols), b0 = bytes(c0), b1 = bytes(c0 + n);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = data + r * row_bytes;
    for (int64_t b = b0 / kLine * kLine; b < b1; b += kLine) prefetch_l2(row + b);
    if (w.format == WeightFormat::kMXFP4) {
      prefetch_l2(w.scales + r * ((w.cols + 31) / 32) + c0 / 32);
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
constexpr FnTable<TileFn, sizeof...(I)> tile_fns(std::integer_sequence<int, I...>) {
  return {{&tile_tokens<I + 1>...}};
}
constexpr auto kTileFns = tile_fns(std::make_integer_sequence<int, kGemmTokens>());

// ---------------------------------------------------------------------------------------------
// k-lane GEMM (fewer tokens: decoding once per weight matters, and a transpose per weight vector
// costs more than the tokens' FMAs on it)

constexpr int kKRows = kMatmul.klane_rows;
constexpr int kKTokens = kMatmul.klane_tokens;
constexpr int64_t kKCols = kMatmul.klane_cols;
// Row stride of the decoded rows: one vector more than a pass, so that the rows (and the x rows,
// 16 KiB apart) do not all fall into the same L1 sets.
constexpr int64_t kKLdw = kKCols + kLanes;
static_assert(kKCols % 128 == 0 && kKRows * kKTokens % kLanes == 0);

// y[t, 0..nr) (+)= sum_k x[t, k] * w[r][k] for R decoded rows (stride kKLdw, zero from n to the
// next whole vector) and T tokens: R x T accumulators with lanes along k; each group of kLanes of
// them is transposed and summed, so that lane i holds accumulator i's total. Every (row, token)
// pair is summed in the same order whatever T and m are.
template <int T>
void klane_block(const float* w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy,
                 int nr, bool first) {
  constexpr int R = kKRows, N = R * T, G = (N + kLanes - 1) / kLanes;
  VF acc[N];
#pragma GCC unroll 32
  for (int i = 0; i < N; ++i) acc[i] = zero();
  auto step = [&](int64_t k, int64_t left) {
    VF wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = load(w + r * kKLdw + k);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const VF xv = left >= kLanes ? loadu(x + t * ldx + k) : load_n(x + t * ldx + k, left);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r * T + t] = fmadd(wv[r], xv, acc[r * T + t]);
    }
  };
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes) step(k, kLanes);
  if (k < n) step(k, n - k);
  alignas(64) float sums[G * kLanes];
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g) {
    VF v[kLanes];
#pragma GCC unroll 16
    for (int i = 0; i < kLanes; ++i) v[i] = g * kLanes + i < N ? acc[g * kLanes + i] : zero();
    transpose(v);
#pragma GCC unroll 16
    for (int i = 1; i < kLanes; ++i) v[0] = add(v[0], v[i]);
    store(sums + g * kLanes, v[0]);
  }
  store_sums<T>(sums, y, ldy, nr, first);
}

using KBlockFn = void (*)(const float*, const float*, int64_t, int64_t, float*, int64_t, int,
                          bool);
template <int... I>
constexpr FnTable<KBlockFn, sizeof...(I)> klane_fns(std::integer_sequence<int, I...>) {
  return {{&klane_block<I + 1>...}};
}
constexpr auto kKBlockFns = klane_fns(std::make_integer_sequence<int, kKTokens>());

// Rows [r0, r1) kKRows at a time, columns in passes of kKCols: each pass decodes the rows once in
// memory order into wbuf, then every group of kKTokens tokens runs on them from L1 (x of a group:
// kKTokens x kKCols floats). The next pass's weight bytes are prefetched first.
void gemm_klane(const MatmulTask& task, int64_t r0, int64_t r1) {
  alignas(64) float wbuf[kKRows * kKLdw];
  const int64_t K = task.w.cols;
  for (int64_t rb = r0; rb < r1; rb += kKRows) {
    const int nr = static_cast<int>(min64(r1 - rb, kKRows));
    for (int64_t c0 = 0; c0 < K; c0 += kKCols) {
      const int64_t n = min64(K - c0, kKCols), npad = (n + kLanes - 1) / kLanes * kLanes;
      if (c0 + kKCols < K) {
        prefetch_pass(task.w, rb, rb + nr, c0 + kKCols, min64(K - c0 - kKCols, kKCols));
      } else if (rb + kKRows < r1) {
        prefetch_pass(task.w, rb + kKRows, min64(r1, rb + 2 * kKRows), 0, kKCols);
      }
      for (int r = 0; r < kKRows; ++r) {
        float* dst = wbuf + r * kKLdw;
        int64_t k = 0;
        if (r < nr) {
          decode_row(task.w, rb + r, c0, n, dst);
          k = n;
        }
        for (; k < npad; ++k) dst[k] = 0.0f;
      }
      for (int64_t t0 = 0; t0 < task.m; t0 += kKTokens) {
        const int64_t left = task.m - t0;
        kKBlockFns.at[(left < kKTokens ? left : kKTokens) - 1](
            wbuf, task.x + t0 * task.ldx + c0, task.ldx, n, task.y + t0 * task.ldy + rb,
            task.ldy, nr, c0 == 0);
      }
    }
  }
}

}  // namespace

void gemm_many_tokens(const MatmulTask& task, int64_t r0, int64_t r1) {
  if (task.w.format == WeightFormat::kMXFP4 && task.m < kMatmul.fp4_klane_max_tokens) {
    gemm_klane(task, r0, r1);
    return;
  }
  alignas(64) float tile[kCols * kRows];
  const int64_t K = task.w.cols;
  for (int64_t rb = r0; rb < r1; rb += kRows) {
    const int nr = static_cast<int>(r1 - rb < kRows ? r1 - rb : kRows);
    for (int64_t c0 = 0; c0 < K; c0 += kCols) {
      const int64_t n = min64(K - c0, kCols);
      decode_tile(task.w, rb, nr, c0, n, tile);
      for (int64_t t0 = 0; t0 < task.m; t0 += kGemmTokens) {
        const int64_t left = task.m - t0;
        kTileFns.at[(left < kGemmTokens ? left : kGemmTokens) - 1](
            tile, n, task.x + t0 * task.ldx + c0, task.ldx, task.y + t0 * task.ldy + rb, task.ldy,
            nr, c0 == 0);
      }
    }
  }
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
