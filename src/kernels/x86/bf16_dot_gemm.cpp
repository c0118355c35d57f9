// y = x W^T for many tokens with bf16 dot products (AVX512-BF16 vdpbf16ps: 2 products per f32
// lane and instruction), for x whose values are exact in bf16 (Kernels::matmul with
// MatmulInput::kBf16Exact: the FP8-rounded activations of --act-quant) and FP8 / MXFP4 weights,
// whose values times their e8m0 scales are exact in bf16 too. Every product is then exact in f32
// (8 + 8 significant bits), as in the f32 kernels; only the f32 summation order differs.
//
// vdpbf16ps treats subnormal inputs as zero and flushes subnormal results (DAZ / FTZ, whatever
// MXCSR says), and vcvtne2ps2bf16 does the same. kernels.cpp takes this path only when no value,
// product or partial sum can be subnormal (the grid argument there), so nothing is flushed.
//
// Layout: a tile of kRows rows (kRowVecs vectors of 16) x kCols columns is decoded once to bf16
// and stored as pairs along k: vector (p, v) holds, in f32 lane i, W[r0 + 16 v + i][2p, 2p + 1]
// (one decoded 32-value row chunk per row, then a 16 x 16 dword transpose). The register tile is
// kTokens tokens x kRowVecs vectors of accumulators; x pairs are broadcast as dwords. MXFP4 with
// fewer tokens (8-31) runs the k-lane kernel further down instead (rows in memory order, no
// transpose per weight vector).
//
// Compiled with -mavx512f/bw/dq/vl -mavx512bf16 and the AVX-512 simd vocabulary (FP8 / MXFP4
// decoders, transpose) and matmul.h's internals (store_sums), which it shares with
// src/kernels/simd/.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "kernels/op_table.h"
#include "kernels/simd/matmul.h"

namespace frugal::kernels {
namespace bf16dot {
namespace {

namespace v = simd::avx512;
using quant::WeightFormat;

constexpr int kRowVecs = 4;
constexpr int kRows = 16 * kRowVecs;
constexpr int64_t kCols = 256;  // multiple of the FP8 (128) and MXFP4 (32) scale blocks
constexpr int64_t kPairs = kCols / 2;
constexpr int kTokens = 6;  // kTokens x kRowVecs = 24 accumulators + 4 weights + 1 broadcast
// From these token counts on faster than the f32 kernels (bench/bf16_bench --sweep, [2048, 4096],
// 1 thread, medians of 3 alternated: FP8 0.78x at 8, 1.08x at 12, 1.21x at 16, under heavier
// load 0.77-1.07x at 12-20; MXFP4 with the k-lane kernel below 0.84-0.88x at 5, 0.99-1.03x at
// 6-7, 1.15-1.22x at 8, 1.63-1.77x at 12).
constexpr int64_t kMinTokensFp8 = 16;
constexpr int64_t kMinTokensMxfp4 = 8;

inline float e8m0_f32(uint8_t c) {
  return c == 0 ? 0x1p-127f : __builtin_bit_cast(float, static_cast<uint32_t>(c) << 23);
}

// 32 f32 -> 32 bf16 in order (exact for the values this path sees: normal and bf16-exact).
inline __m512i pack_bf16(__m512 lo, __m512 hi) {
  return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
}

// The 16 e2m1 values as bf16 times 2^(s - 127), one 64-byte table per scale code s (the upper 16
// words unused): adding s - 127 to the exponent field of the nonzero ones is exact for codes
// 2..252, where 0.5 x 2^(s - 127) is normal and 6 x 2^(s - 127) finite (kernels.cpp takes this
// path only for those). Looked up from memory, the scale costs a load instead of a broadcast
// and an add per 32 values.
struct Fp4Bf16Tables {
  alignas(64) uint16_t t[256][32];
};
constexpr Fp4Bf16Tables make_fp4_tables() {
  constexpr uint16_t kE2m1[16] = {0,      0x3f00, 0x3f80, 0x3fc0, 0x4000, 0x4040, 0x4080, 0x40c0,
                                  0x8000, 0xbf00, 0xbf80, 0xbfc0, 0xc000, 0xc040, 0xc080, 0xc0c0};
  Fp4Bf16Tables tabs{};
  for (int s = 0; s < 256; ++s) {
    for (int i = 0; i < 16; ++i) {
      const bool zero = (kE2m1[i] & 0x7fff) == 0;
      tabs.t[s][i] = static_cast<uint16_t>(zero ? kE2m1[i] : kE2m1[i] + (s - 127) * 128);
    }
  }
  return tabs;
}
constexpr Fp4Bf16Tables kFp4Tables = make_fp4_tables();

// MXFP4 straight to bf16: each byte's two nibbles become the word indices of its dword
// ((b | b << 12) & 0x000f000f: low nibble, the even element, first), and vpermw looks them up in
// the block's table.
inline __m512i fp4_bf16(__m128i bytes, uint8_t code) {
  const __m512i d = _mm512_cvtepu8_epi32(bytes);
  const __m512i idx = _mm512_ternarylogic_epi32(d, _mm512_slli_epi32(d, 12),
                                                _mm512_set1_epi32(0x000f000f), 0xa8);  // (a|b)&c
  return _mm512_permutexvar_epi16(idx, _mm512_load_si512(kFp4Tables.t[code]));
}

// The 16 bytes at src (32 values, n_left of them valid: the rest read as zero).
inline __m128i fp4_bytes(const uint8_t* src, int64_t n_left) {
  if (n_left >= 32) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  return _mm_maskz_loadu_epi8(static_cast<__mmask16>(v::lanes16((n_left + 1) / 2)), src);
}

inline __m512i mxfp4_bf16(const quant::WeightView& w, int64_t row, int64_t c, int64_t n_left) {
  const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * (w.cols / 2) + c / 2;
  return fp4_bf16(fp4_bytes(src, n_left), w.scales[row * ((w.cols + 31) / 32) + c / 32]);
}

// Row `row`, columns [c, c + 32) (c a multiple of 32, n_left valid of them, rest zero) as 32 bf16.
inline __m512i decode32(const quant::WeightView& w, int64_t row, int64_t c, int64_t n_left) {
  __m512 lo, hi;
  if (w.format == WeightFormat::kFP8Block) {
    const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * w.cols + c;
    const __m256i codes = n_left >= 32
                              ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src))
                              : _mm256_maskz_loadu_epi8(v::bytes32(n_left), src);
    v::fp8x32_to_f32(codes, &lo, &hi);  // values times 2^-8
    const uint8_t code = w.scales[(row / 128) * ((w.cols + 127) / 128) + c / 128];
    const __m512 s = _mm512_set1_ps(e8m0_f32(code) * 256.0f);
    lo = _mm512_mul_ps(lo, s);
    hi = _mm512_mul_ps(hi, s);
  } else {  // kMXFP4: 16 bytes, one scale block; w.cols is even
    return mxfp4_bf16(w, row, c, n_left);
  }
  return pack_bf16(lo, hi);
}

// The next tile's bytes of row `row` (columns [c0, c0 + kCols)) towards L2, a whole token sweep
// ahead of their decode.
inline void prefetch_row(const quant::WeightView& w, int64_t row, int64_t c0) {
  if (c0 >= w.cols) return;
  const bool fp8 = w.format == WeightFormat::kFP8Block;
  const auto* base = static_cast<const char*>(w.data) +
                     (fp8 ? row * w.cols + c0 : row * (w.cols / 2) + c0 / 2);
  const int64_t bytes = fp8 ? kCols : kCols / 2;
  for (int64_t b = 0; b < bytes; b += 64) _mm_prefetch(base + b, _MM_HINT_T1);
}

// tile[(p * kRowVecs + g) * 16 + i] = W[r0 + 16 g + i][c0 + 2p .. 2p + 1] as a bf16 pair, for
// p < round_up(n, 32) / 2; rows past nr and columns past n are zero. 16 rows at a time, a whole
// 64-byte line of each (two 32-value chunks for FP8) per visit: rows 4 KiB apart share an L1 set,
// so visiting each line twice would fetch it twice. Then 16 x 16 dword transposes.
void decode_tile(const quant::WeightView& w, int64_t r0, int nr, int64_t c0, int64_t n,
                 uint32_t* tile) {
  for (int r = 0; r < nr; ++r) prefetch_row(w, r0 + r, c0 + kCols);
  alignas(64) uint32_t rows[16][32];
  for (int g = 0; g < kRowVecs; ++g) {
    for (int64_t kb = 0; kb < n; kb += 64) {
      const int halves = n - kb > 32 ? 2 : 1;
      for (int i = 0; i < 16; ++i) {
        const int r = 16 * g + i;
        for (int h = 0; h < halves; ++h) {
          const __m512i v = r < nr ? decode32(w, r0 + r, c0 + kb + 32 * h, n - kb - 32 * h)
                                   : _mm512_setzero_si512();
          _mm512_store_si512(&rows[i][16 * h], v);
        }
      }
      for (int h = 0; h < halves; ++h) {
        __m512 v[16];
        for (int i = 0; i < 16; ++i) v[i] = _mm512_load_ps(reinterpret_cast<const float*>(&rows[i][16 * h]));
        v::transpose(v);  // v[j] lane i = row i's pair j
        const int64_t p0 = (kb + 32 * h) / 2;
        for (int j = 0; j < 16; ++j) {
          _mm512_store_ps(reinterpret_cast<float*>(tile + ((p0 + j) * kRowVecs + g) * 16), v[j]);
        }
      }
    }
  }
}

inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh>(v); }

// y[t, 0..nr) (+)= sum over pairs p < np of x[t, 2p..2p+1] . tile[p] for T tokens.
template <int T>
void tile_tokens(const uint32_t* tile, int64_t np, const uint16_t* xb, int64_t ldxb, float* y,
                 int64_t ldy, int nr, bool first) {
  __m512 acc[T][kRowVecs];
  for (int t = 0; t < T; ++t) {
    for (int g = 0; g < kRowVecs; ++g) acc[t][g] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < np; ++p) {
    __m512bh wv[kRowVecs];
    for (int g = 0; g < kRowVecs; ++g) {
      wv[g] = as_bh(_mm512_load_si512(tile + (p * kRowVecs + g) * 16));
    }
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      int32_t pair;
      std::memcpy(&pair, xb + t * ldxb + 2 * p, 4);
      const __m512bh xv = as_bh(_mm512_set1_epi32(pair));
      for (int g = 0; g < kRowVecs; ++g) acc[t][g] = _mm512_dpbf16_ps(acc[t][g], xv, wv[g]);
    }
  }
  for (int t = 0; t < T; ++t) {
    float* dst = y + t * ldy;
    for (int g = 0; g < kRowVecs; ++g) {
      const __mmask16 mk = v::lanes16(nr - 16 * g);
      if (mk == 0) break;
      __m512 a = acc[t][g];
      if (!first) a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(mk, dst + 16 * g));
      _mm512_mask_storeu_ps(dst + 16 * g, mk, a);
    }
  }
}

using TileFn = void (*)(const uint32_t*, int64_t, const uint16_t*, int64_t, float*, int64_t, int,
                        bool);
template <int... I>
constexpr std::array<TileFn, sizeof...(I)> tile_fns(std::integer_sequence<int, I...>) {
  return {&tile_tokens<I + 1>...};
}
constexpr auto kTileFns = tile_fns(std::make_integer_sequence<int, kTokens>());

// Columns in blocks whose bf16 x panel (m rows) stays within ~512 KiB, so that each row block's
// sweep over all tokens reads x from L2 (with K = 8192 and 48 tokens a whole x row set is 768 KiB
// and came from L3 for every row block); y is then summed over the column blocks. At least
// kMinColBlock columns: with many tokens y's extra passes cost more than x from L3.
constexpr int64_t kMinColBlock = 2048;
void matmul(const MatmulTask& task, int64_t r0, int64_t r1) {
  alignas(64) uint32_t tile[kPairs * kRowVecs * 16];
  const int64_t K = task.w.cols;
  int64_t kblock = (int64_t{256} << 10) / task.m / kCols * kCols;
  if (kblock < kMinColBlock) kblock = kMinColBlock;
  for (int64_t k0 = 0; k0 < K; k0 += kblock) {
    const int64_t k1 = K - k0 < kblock ? K : k0 + kblock;
    for (int64_t rb = r0; rb < r1; rb += kRows) {
      const int nr = static_cast<int>(r1 - rb < kRows ? r1 - rb : kRows);
      for (int64_t c0 = k0; c0 < k1; c0 += kCols) {
        const int64_t n = k1 - c0 < kCols ? k1 - c0 : kCols;
        decode_tile(task.w, rb, nr, c0, n, tile);
        const int64_t np = (n + 31) / 32 * 16;
        for (int64_t t0 = 0; t0 < task.m; t0 += kTokens) {
          const int64_t left = task.m - t0;
          kTileFns[(left < kTokens ? left : kTokens) - 1](
              tile, np, task.xb + t0 * task.ldxb + c0, task.ldxb, task.y + t0 * task.ldy + rb,
              task.ldy, nr, c0 == 0);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// k-lane GEMM for MXFP4 with fewer tokens (a routed expert's ~12 tokens of a 512-token chunk),
// where the tile's transpose per weight vector costs more than the few tokens' products on it:
// each pass of kKCols columns decodes kKRows rows once, in memory order, to bf16 (kKLdw apart);
// then every group of kKTokens tokens runs on them from L1 with kKRows x kKTokens accumulators
// whose lanes hold pairs along k (x read as whole vectors of 32 bf16, not broadcast), reduced by
// one transpose per pass. The next pass's bytes are prefetched into L2 during the decode.
constexpr int kKRows = 4;
constexpr int kKTokens = 4;
constexpr int64_t kKCols = 2048;        // a pass: 4 decoded rows + 4 tokens' x = 32 KiB of L1
constexpr int64_t kKLdw = kKCols + 32;  // bf16; rows 4 KiB apart would all share L1 sets
constexpr int64_t kKMaxTokens = 32;     // from here the tile (bench/bf16_bench --sweep)

// y[t, 0..nr) (+)= sum over k of x[t, k] * w[r][k] for kKRows decoded rows (nv vectors of 32,
// zero past the columns) and T tokens. Every (row, token) pair is summed in the same order
// whatever T and m are.
template <int T>
void klane_block(const uint16_t* w, const uint16_t* xb, int64_t ldxb, int64_t nv, float* y,
                 int64_t ldy, int nr, bool first) {
  constexpr int R = kKRows, N = R * T, G = (N + 15) / 16;
  __m512 acc[N];
  for (auto& a : acc) a = _mm512_setzero_ps();
  for (int64_t v = 0; v < nv; ++v) {
    __m512bh wv[R];
    for (int r = 0; r < R; ++r) wv[r] = as_bh(_mm512_load_si512(w + r * kKLdw + 32 * v));
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const __m512bh xv = as_bh(_mm512_loadu_si512(xb + t * ldxb + 32 * v));
      for (int r = 0; r < R; ++r) acc[r * T + t] = _mm512_dpbf16_ps(acc[r * T + t], wv[r], xv);
    }
  }
  alignas(64) float sums[G * 16];
  for (int g = 0; g < G; ++g) {
    __m512 s[16];
    for (int i = 0; i < 16; ++i) s[i] = g * 16 + i < N ? acc[g * 16 + i] : _mm512_setzero_ps();
    v::transpose(s);  // s[j] lane i = accumulator 16 g + i's lane j
    for (int i = 1; i < 16; ++i) s[0] = _mm512_add_ps(s[0], s[i]);
    _mm512_store_ps(sums + 16 * g, s[0]);
  }
  simd::avx512::matmul_detail::store_sums<T>(sums, y, ldy, nr, first);
}

using KBlockFn = void (*)(const uint16_t*, const uint16_t*, int64_t, int64_t, float*, int64_t, int,
                          bool);
template <int... I>
constexpr std::array<KBlockFn, sizeof...(I)> klane_fns(std::integer_sequence<int, I...>) {
  return {&klane_block<I + 1>...};
}
constexpr auto kKBlockFns = klane_fns(std::make_integer_sequence<int, kKTokens>());

// Rows [r0, r1) kKRows at a time, columns in passes of kKCols. The next pass's bytes (the rest
// of these rows, else the next rows' first pass) go towards L2 while this pass decodes, one
// 64-byte line per two decoded vectors, with its scales first: issued all at once, at the start
// of the pass, the prefetches of a pass (~70 lines) were partly lost and the decode stalled on
// DRAM in the model (perf: 61 % of its samples on the weight load).
void matmul_klane(const MatmulTask& task, int64_t r0, int64_t r1) {
  alignas(64) uint16_t wbuf[kKRows * kKLdw];
  const quant::WeightView& w = task.w;
  const int64_t K = w.cols, row_bytes = K / 2, scale_row = (K + 31) / 32;
  const auto* data = static_cast<const char*>(w.data);
  for (int64_t rb = r0; rb < r1; rb += kKRows) {
    const int nr = static_cast<int>(r1 - rb < kKRows ? r1 - rb : kKRows);
    for (int64_t c0 = 0; c0 < K; c0 += kKCols) {
      const int64_t n = K - c0 < kKCols ? K - c0 : kKCols, nv = (n + 31) / 32;
      // The next pass: rows [pr, pr + pn), columns from pc.
      int64_t pr = rb, pc = c0 + kKCols, pn = nr;
      if (pc >= K) {
        pr = rb + kKRows;
        pc = 0;
        pn = r1 - pr < kKRows ? r1 - pr : kKRows;
      }
      for (int r = 0; r < kKRows; ++r) {
        uint16_t* dst = wbuf + r * kKLdw;
        if (r >= nr) {
          for (int64_t v = 0; v < nv; ++v) _mm512_store_si512(dst + 32 * v, _mm512_setzero_si512());
          continue;
        }
        // The next pass's row r: its first pbytes bytes (none when it has no row r).
        const int64_t pbytes = r < pn ? ((K - pc < kKCols ? K - pc : kKCols) + 1) / 2 : 0;
        const char* next = data + (pbytes > 0 ? (pr + r) * row_bytes + pc / 2 : 0);
        if (pbytes > 0) {
          _mm_prefetch(reinterpret_cast<const char*>(w.scales + (pr + r) * scale_row + pc / 32),
                       _MM_HINT_T1);
        }
        const auto* src = reinterpret_cast<const uint8_t*>(data + (rb + r) * row_bytes + c0 / 2);
        const uint8_t* codes = w.scales + (rb + r) * scale_row + c0 / 32;
        // Whole 64-byte lines of the row (4 vectors of 32 values) first, two lines of the next pass
        // prefetched per line decoded (its row is covered halfway through this one); then the
        // rest. Unrolled so, the decode ran 1.07-1.19x (bf16_bench, m = 8-24).
        int64_t v = 0;
        for (; v + 4 <= nv && 32 * (v + 4) <= n; v += 4) {
          if (v * 32 < pbytes) _mm_prefetch(next + v * 32, _MM_HINT_T1);
          if (v * 32 + 64 < pbytes) _mm_prefetch(next + v * 32 + 64, _MM_HINT_T1);
          const __m128i* s4 = reinterpret_cast<const __m128i*>(src + 16 * v);
#pragma GCC unroll 4
          for (int q = 0; q < 4; ++q) {
            _mm512_store_si512(dst + 32 * (v + q), fp4_bf16(_mm_loadu_si128(s4 + q), codes[v + q]));
          }
        }
        for (; v < nv; ++v) {
          if ((v & 1) == 0 && v * 32 < pbytes) _mm_prefetch(next + v * 32, _MM_HINT_T1);
          _mm512_store_si512(dst + 32 * v, fp4_bf16(fp4_bytes(src + 16 * v, n - 32 * v), codes[v]));
        }
      }
      for (int64_t t0 = 0; t0 < task.m; t0 += kKTokens) {
        const int64_t left = task.m - t0;
        kKBlockFns[(left < kKTokens ? left : kKTokens) - 1](
            wbuf, task.xb + t0 * task.ldxb + c0, task.ldxb, nv, task.y + t0 * task.ldy + rb,
            task.ldy, nr, c0 == 0);
      }
    }
  }
}

void matmul_mxfp4(const MatmulTask& task, int64_t r0, int64_t r1) {
  if (task.m < kKMaxTokens) {
    matmul_klane(task, r0, r1);
  } else {
    matmul(task, r0, r1);
  }
}

int to_bf16(const float* x, int64_t t0, int64_t t1, int64_t cols, int64_t ldx, uint16_t* xb,
            int64_t ldxb) {
  const __m512i low16 = _mm512_set1_epi32(0xffff), abs_mask = _mm512_set1_epi32(0x7fffffff);
  __mmask16 inexact = 0;
  __m512i emin = _mm512_set1_epi32(255);
  for (int64_t t = t0; t < t1; ++t) {
    const float* src = x + t * ldx;
    uint16_t* dst = xb + t * ldxb;
    for (int64_t k = 0; k < ldxb; k += 32) {
      __m512 h[2];
      for (int q = 0; q < 2; ++q) {
        h[q] = _mm512_maskz_loadu_ps(v::lanes16(cols - k - 16 * q), src + k + 16 * q);
        const __m512i b = _mm512_castps_si512(h[q]);
        inexact |= _mm512_test_epi32_mask(b, low16);
        const __mmask16 nz = _mm512_test_epi32_mask(b, abs_mask);
        emin = _mm512_mask_min_epu32(emin, nz, emin, _mm512_srli_epi32(_mm512_and_si512(b, abs_mask), 23));
      }
      // Exact bf16 values are their f32 bits' upper halves (vcvtne2ps2bf16 would flush the
      // subnormals that the caller then rejects anyway).
      const __m512i hi16 = _mm512_permutex2var_epi16(
          _mm512_castps_si512(h[0]),
          _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29,
                           27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1),
          _mm512_castps_si512(h[1]));
      _mm512_storeu_si512(dst + k, hi16);
    }
  }
  if (inexact != 0) return -1;
  return static_cast<int>(_mm512_reduce_min_epu32(emin));
}

int scale_range(const quant::WeightView& w) {
  const int64_t n = w.format == WeightFormat::kFP8Block
                        ? ((w.rows + 127) / 128) * ((w.cols + 127) / 128)
                        : w.rows * ((w.cols + 31) / 32);
  __m512i lo = _mm512_set1_epi8(static_cast<char>(0xff)), hi = _mm512_setzero_si512();
  for (int64_t i = 0; i < n; i += 64) {
    const __mmask64 mk = v::bytes64(n - i);
    const __m512i s = _mm512_maskz_loadu_epi8(mk, w.scales + i);
    lo = _mm512_mask_min_epu8(lo, mk, lo, s);
    hi = _mm512_max_epu8(hi, s);
  }
  alignas(64) uint8_t l[64], h[64];
  _mm512_store_si512(l, lo);
  _mm512_store_si512(h, hi);
  int mn = 255, mx = 0;
  for (int i = 0; i < 64; ++i) {
    mn = l[i] < mn ? l[i] : mn;
    mx = h[i] > mx ? h[i] : mx;
  }
  return mn | mx << 8;
}

// 24 chains: more than vdpbf16ps latency (~6) x 2 ports, so the loop runs at its throughput.
uint64_t peak(int64_t iters) {
  __m512 acc[24];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const __m512bh a = as_bh(_mm512_set1_epi16(0x3f80)), b = as_bh(_mm512_set1_epi16(0x3400));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 24
    for (auto& c : acc) c = _mm512_dpbf16_ps(c, a, b);
  }
  __m512 s = acc[0];
  for (int j = 1; j < 24; ++j) s = _mm512_add_ps(s, acc[j]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return static_cast<uint64_t>(iters) * 24 * 32 * 2;
}

}  // namespace
}  // namespace bf16dot

void install_bf16_dot(OpTable* t) {
  Bf16DotOps& o = t->bf16_dot;
  o.min_tokens[static_cast<int>(quant::WeightFormat::kFP8Block)] = bf16dot::kMinTokensFp8;
  o.min_tokens[static_cast<int>(quant::WeightFormat::kMXFP4)] = bf16dot::kMinTokensMxfp4;
  o.to_bf16 = bf16dot::to_bf16;
  o.scale_range = bf16dot::scale_range;
  o.matmul[static_cast<int>(quant::WeightFormat::kFP8Block)] = bf16dot::matmul;
  o.matmul[static_cast<int>(quant::WeightFormat::kMXFP4)] = bf16dot::matmul_mxfp4;
  o.peak = bf16dot::peak;
}

}  // namespace frugal::kernels
