// Vocabulary of the generic kernels (src/kernels/simd/*.cpp) for AVX2 + FMA + F16C: 8 f32 lanes.
// Included through simd/target.h only, by files compiled with the AVX2 flags; everything has
// internal linkage and is always inlined (see avx512.h). AVX2 has no byte masks: the first-n
// forms of the integer loads go through a zero-padded stack copy.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {

using VF = __m256;
inline constexpr int kLanes = 8;

// ---- Masks (internal) ----

// All ones in the first n of 8 lanes, for maskload / maskstore.
FRUGAL_SIMD_INLINE __m256i lanes8(int64_t n) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int c = n <= 0 ? 0 : (n >= 8 ? 8 : static_cast<int>(n));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), iota);
}
FRUGAL_SIMD_INLINE size_t clamp_count(int64_t n, int64_t most) {
  return static_cast<size_t>(n <= 0 ? 0 : (n >= most ? most : n));
}

// ---- f32 vectors (the rest: common.h) ----

FRUGAL_SIMD_INLINE VF round_nearest(VF a) {
  return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
FRUGAL_SIMD_INLINE VF fmadd(VF a, VF b, VF c) { return _mm256_fmadd_ps(a, b, c); }
FRUGAL_SIMD_INLINE VF fnmadd(VF a, VF b, VF c) { return _mm256_fnmadd_ps(a, b, c); }
FRUGAL_SIMD_INLINE VF set1(float v) { return _mm256_set1_ps(v); }

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS

#include "kernels/simd/target/common.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {

// Matmul tuning (MatmulTuning in common.h). 16 ymm registers: GEMV groups of 4 tokens, at most
// 8 accumulators next to the decoded vectors; dense passes of 2048 columns (4 tokens x 8 KiB of x
// in L1); GEMM tile of 16 rows, 6 tokens x 2 vectors (12 accumulators). No k-lane GEMM (gemm.cpp):
// with 4 rows x 2 tokens it was, against the groups and the tile, MXFP4 1.07-1.16x at m = 12-16
// but 0.88x at 48, FP8 0.91-0.99x (kernels_bench BM_Matmul, 1 thread, m = 4-64).
// bf16 with one token: 2 rows in whole lines (two chains each; 4 streams of a thread, not 8): one
// core streams [4096, 4096] at 1.04-1.09x the rate of 4 rows (two series) and 0.96-1.01x that of
// the per-width kernel this replaced (four series; AMD Zen 5 running the AVX2 code, 5-7 alternated
// processes each, medians; docs/BENCHMARKS.md); one row with 4 chains ran 0.73x.
inline constexpr MatmulTuning kMatmul = {.max_tokens = 4, .fp8_rows = {4, 2, 2, 2},
                                         .fp4_rows = {2, 1, 1, 1}, .fp4_prefetch_l1 = false,
                                         .dense_tokens = 4, .dense_rows = {4, 4, 2, 2},
                                         .bf16_rows = {2},
                                         .dense_pass_max = 2048, .bf16_lines = false,
                                         .gemm_min_tokens = 16, .gemm_rows = 16, .gemm_tokens = 6};

FRUGAL_SIMD_INLINE VF sqrt(VF a) { return _mm256_sqrt_ps(a); }
FRUGAL_SIMD_INLINE VF max(VF a, VF b) { return _mm256_max_ps(a, b); }
FRUGAL_SIMD_INLINE VF min(VF a, VF b) { return _mm256_min_ps(a, b); }
// maskload / maskstore: lanes past n are neither read nor written.
FRUGAL_SIMD_INLINE VF load_n(const float* p, int64_t n) { return _mm256_maskload_ps(p, lanes8(n)); }
FRUGAL_SIMD_INLINE void store_n(float* p, VF v, int64_t n) { _mm256_maskstore_ps(p, lanes8(n), v); }

FRUGAL_SIMD_INLINE float hsum(VF v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
FRUGAL_SIMD_INLINE float hmax(VF v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// e^x as in avx512.h (exp_reduced in common.h), with 2^n built in the exponent field: x is
// clamped to [-87.3, 88.3] so n stays in [-126, 127], and inputs below -87.3 (results below
// 2^-126) give 0 instead of a subnormal.
FRUGAL_SIMD_INLINE VF exp(VF x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 tiny = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);  // also true for -inf
  VF n;
  const VF p = exp_reduced(max(min(x, set1(88.3f)), lo), &n);
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// 4 x 4 transposes inside each 128-bit half: lane i of half h of *a, *b, *c, *d -> lane 0..3 of
// half h of the i-th of them (pairs interleaved, then 64-bit pairs).
FRUGAL_SIMD_INLINE void transpose4_halves(VF* a, VF* b, VF* c, VF* d) {
  const __m256d ab0 = _mm256_castps_pd(_mm256_unpacklo_ps(*a, *b));
  const __m256d ab1 = _mm256_castps_pd(_mm256_unpackhi_ps(*a, *b));
  const __m256d cd0 = _mm256_castps_pd(_mm256_unpacklo_ps(*c, *d));
  const __m256d cd1 = _mm256_castps_pd(_mm256_unpackhi_ps(*c, *d));
  *a = _mm256_castpd_ps(_mm256_unpacklo_pd(ab0, cd0));
  *b = _mm256_castpd_ps(_mm256_unpackhi_pd(ab0, cd0));
  *c = _mm256_castpd_ps(_mm256_unpacklo_pd(ab1, cd1));
  *d = _mm256_castpd_ps(_mm256_unpackhi_pd(ab1, cd1));
}
// In-register transpose of 8 x 8 values: r[i] lane j -> r[j] lane i. The low halves of r[i] and
// r[i + 4] are paired first (and the high halves), then each set of four is transposed in halves.
FRUGAL_SIMD_INLINE void transpose(VF r[8]) {
  VF u[8];
  for (int i = 0; i < 4; ++i) {
    u[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
    u[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
  }
  transpose4_halves(&u[0], &u[1], &u[2], &u[3]);
  transpose4_halves(&u[4], &u[5], &u[6], &u[7]);
  for (int j = 0; j < 8; ++j) r[j] = u[j];
}

// ---- bf16 / f16 -> f32 (exact) ----

// 8 16-bit values at p; the first n only (any n), rest 0, through a zero-padded copy.
FRUGAL_SIMD_INLINE __m128i u16x8(const uint16_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
FRUGAL_SIMD_INLINE __m128i u16x8_n(const uint16_t* p, int64_t n) {
  alignas(16) uint16_t tail[8] = {};
  std::memcpy(tail, p, 2 * clamp_count(n, 8));
  return u16x8(tail);
}
// bf16 bits -> f32: the 16 bits on top of a zero low half.
FRUGAL_SIMD_INLINE VF bf16_widen(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
FRUGAL_SIMD_INLINE VF load_bf16(const uint16_t* p) { return bf16_widen(u16x8(p)); }
FRUGAL_SIMD_INLINE VF load_bf16_n(const uint16_t* p, int64_t n) {
  return bf16_widen(u16x8_n(p, n));
}
FRUGAL_SIMD_INLINE void load_bf16x2(const uint16_t* p, VF* lo, VF* hi) {
  *lo = load_bf16(p);
  *hi = load_bf16(p + 8);
}
FRUGAL_SIMD_INLINE VF load_f16(const uint16_t* p) { return _mm256_cvtph_ps(u16x8(p)); }
FRUGAL_SIMD_INLINE VF load_f16_n(const uint16_t* p, int64_t n) {
  return _mm256_cvtph_ps(u16x8_n(p, n));
}

// ---- FP8 e4m3 ----

// 16 e4m3 codes -> 16 f32 values times 2^-8, exactly (see avx512.h: the e4m3 bits are widened to
// the f16 with the same sign, exponent and mantissa).
FRUGAL_SIMD_INLINE void fp8x16_to_f32(__m128i codes, VF* lo, VF* hi) {
  __m256i h = _mm256_cvtepi8_epi16(codes);
  h = _mm256_and_si256(_mm256_slli_epi16(h, 7), _mm256_set1_epi16(static_cast<int16_t>(0xBFFF)));
  *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
  *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}
// 4 * kLanes (32) codes -> v[0..3] in memory order, times 2^-8.
FRUGAL_SIMD_INLINE void fp8_decode4(const uint8_t* p, VF v[4]) {
  const auto* q = reinterpret_cast<const __m128i*>(p);
  fp8x16_to_f32(_mm_loadu_si128(q), &v[0], &v[1]);
  fp8x16_to_f32(_mm_loadu_si128(q + 1), &v[2], &v[3]);
}
FRUGAL_SIMD_INLINE void fp8_decode4_n(const uint8_t* p, int64_t n, VF v[4]) {
  alignas(16) uint8_t tail[32] = {};
  std::memcpy(tail, p, clamp_count(n, 32));
  fp8_decode4(tail, v);
}

// ---- MXFP4 e2m1 ----
//
// A chunk is 32 packed bytes = 64 elements = 2 scale blocks, decoded into 8 vectors. Every e2m1
// value is a bf16 number, so two in-lane byte tables (vpshufb, 16 entries = the 16 codes) give
// the high and low byte of its bf16 pattern; interleaving them makes bf16 words, and a word's
// bits moved to the top of a dword (shift for even words, mask for odd ones) are its f32. 24
// vector ops per 64 weights incl. the 8 FMAs, against 36 with an 8-entry vpermps lookup per
// vector, and one plain load instead of four overlapping ones.
//
// Order: all steps stay inside 128-bit lanes, so lane L (bytes 16L..16L+15) holds scale block L
// of the chunk. Vector j = 4h + 2u + p, dword d of lane L is byte k = 8u + 2d + p of that lane,
// nibble h: element 2(16L + k) + h (fp4_order).
inline constexpr int64_t kFp4ChunkBytes = 4 * kLanes;
struct Fp4Raw {
  __m256i b;
};
FRUGAL_SIMD_INLINE Fp4Raw fp4_load(const uint8_t* p) {
  return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))};
}
FRUGAL_SIMD_INLINE Fp4Raw fp4_load_n(const uint8_t* p, int64_t nb) {
  alignas(32) uint8_t tail[32] = {};
  std::memcpy(tail, p, clamp_count(nb, 32));
  return {_mm256_load_si256(reinterpret_cast<const __m256i*>(tail))};
}
// bf16 of 0, .5, 1, 1.5, 2, 3, 4, 6 and their negatives: 0x0000 3F00 3F80 3FC0 4000 4040 4080
// 40C0 (| 0x8000): high and low bytes.
FRUGAL_SIMD_INLINE __m128i fp4_hi_tab() {
  return _mm_setr_epi8(0x00, 0x3f, 0x3f, 0x3f, 0x40, 0x40, 0x40, 0x40, static_cast<char>(0x80),
                       static_cast<char>(0xbf), static_cast<char>(0xbf), static_cast<char>(0xbf),
                       static_cast<char>(0xc0), static_cast<char>(0xc0), static_cast<char>(0xc0),
                       static_cast<char>(0xc0));
}
FRUGAL_SIMD_INLINE __m128i fp4_lo_tab() {
  return _mm_setr_epi8(0x00, 0x00, static_cast<char>(0x80), static_cast<char>(0xc0), 0x00, 0x40,
                       static_cast<char>(0x80), static_cast<char>(0xc0), 0x00, 0x00,
                       static_cast<char>(0x80), static_cast<char>(0xc0), 0x00, 0x40,
                       static_cast<char>(0x80), static_cast<char>(0xc0));
}
FRUGAL_SIMD_INLINE void fp4_decode(const Fp4Raw& raw, VF v[8]) {
  const __m256i hi_tab = _mm256_broadcastsi128_si256(fp4_hi_tab());
  const __m256i lo_tab = _mm256_broadcastsi128_si256(fp4_lo_tab());
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i top = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  const __m256i codes[2] = {_mm256_and_si256(raw.b, nib),
                            _mm256_and_si256(_mm256_srli_epi16(raw.b, 4), nib)};
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m256i bh = _mm256_shuffle_epi8(hi_tab, codes[h]);
    const __m256i bl = _mm256_shuffle_epi8(lo_tab, codes[h]);
    const __m256i words[2] = {_mm256_unpacklo_epi8(bl, bh), _mm256_unpackhi_epi8(bl, bh)};
#pragma GCC unroll 2
    for (int u = 0; u < 2; ++u) {
      v[4 * h + 2 * u] = _mm256_castsi256_ps(_mm256_slli_epi32(words[u], 16));
      v[4 * h + 2 * u + 1] = _mm256_castsi256_ps(_mm256_and_si256(words[u], top));
    }
  }
}
// Vector j of fp4_decode alone (j a constant after unrolling; the shared table lookups of
// several j are merged by the compiler).
FRUGAL_SIMD_INLINE VF fp4_decode_one(const Fp4Raw& raw, int j) {
  const int h = j / 4, u = (j / 2) % 2, odd = j % 2;
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i codes =
      h ? _mm256_and_si256(_mm256_srli_epi16(raw.b, 4), nib) : _mm256_and_si256(raw.b, nib);
  const __m256i bh = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(fp4_hi_tab()), codes);
  const __m256i bl = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(fp4_lo_tab()), codes);
  const __m256i words = u ? _mm256_unpackhi_epi8(bl, bh) : _mm256_unpacklo_epi8(bl, bh);
  return _mm256_castsi256_ps(
      odd ? _mm256_and_si256(words, _mm256_set1_epi32(static_cast<int>(0xffff0000u)))
          : _mm256_slli_epi32(words, 16));
}
// Slot 8j + 4L + d of the decoded vectors holds chunk element 2(16L + 8u + 2d + p) + h, with
// j = 4h + 2u + p.
constexpr int fp4_order(int i) {
  const int j = i / 8, lane = (i / 4) % 2, d = i % 4;
  const int h = j / 4, u = (j / 2) % 2, p = j % 2;
  return 2 * (16 * lane + 8 * u + 2 * d + p) + h;
}
struct Fp4OrderTable {
  int8_t at[64];
  constexpr Fp4OrderTable() : at() {
    for (int i = 0; i < 64; ++i) at[i] = static_cast<int8_t>(fp4_order(i));
  }
};
inline constexpr Fp4OrderTable kFp4OrderTable;
FRUGAL_SIMD_INLINE void fp4_prepare(const float* src, float* dst) {
  for (int i = 0; i < 64; ++i) dst[i] = src[kFp4OrderTable.at[i]];
}
// One scale load per chunk: its two e8m0 codes (n valid) -> lanes 0-3 scale 0, lanes 4-7
// scale 1, in vector ops (code 0 -> 2^-127).
inline constexpr int kFp4ScaleChunks = 1;
FRUGAL_SIMD_INLINE VF fp4_scales_load(const uint8_t* s, int64_t n) {
  const int s1 = n >= 2 ? s[1] : 0;
  const __m128i two = _mm_cvtsi32_si128(s[0] | (s1 << 8));
  const __m128i spread =
      _mm_shuffle_epi8(two, _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1));
  const __m256i e = _mm256_slli_epi32(_mm256_cvtepu8_epi32(spread), 23);
  return _mm256_castsi256_ps(_mm256_max_epu32(e, _mm256_set1_epi32(0x00400000)));
}
FRUGAL_SIMD_INLINE VF fp4_chunk_scale(VF s, int /*i*/) { return s; }
// kLanes (8) packed bytes -> 16 elements in memory order, unscaled (the bf16 byte tables on the
// nibbles interleaved back into element order).
FRUGAL_SIMD_INLINE void fp4_decode_seq(const uint8_t* p, VF v[2]) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  const __m128i nib = _mm_set1_epi8(0x0f);
  const __m128i codes =
      _mm_unpacklo_epi8(_mm_and_si128(b, nib), _mm_and_si128(_mm_srli_epi16(b, 4), nib));
  const __m128i bh = _mm_shuffle_epi8(fp4_hi_tab(), codes);
  const __m128i bl = _mm_shuffle_epi8(fp4_lo_tab(), codes);
  v[0] = bf16_widen(_mm_unpacklo_epi8(bl, bh));
  v[1] = bf16_widen(_mm_unpackhi_epi8(bl, bh));
}

// ---- For the ops (ops.cpp, attention.cpp, probes.cpp; added by K2) ----

// Score tile of the attention kernel: entries x 4 heads of accumulators (8 of the 16 registers,
// plus 2 kv and 4 q rows), and vectors of head dims per head in its p * kv step (8 heads x 1).
inline constexpr int kAttnTileEntries = 2;
inline constexpr int kAttnDimVecs = 1;

// Lanes 2i and 2i + 1 exchanged (rope's pair swap).
FRUGAL_SIMD_INLINE VF swap_pairs(VF v) { return _mm256_permute_ps(v, 0xb1); }
// Lanes [0, n) of v, the rest 0 (any n).
FRUGAL_SIMD_INLINE VF keep_n(VF v, int64_t n) {
  return _mm256_and_ps(v, _mm256_castsi256_ps(lanes8(n)));
}
// Per lane a < b ? t : f (false for NaN).
FRUGAL_SIMD_INLINE VF select_lt(VF a, VF b, VF t, VF f) {
  return _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
}
// Bitwise OR of the lanes' bit patterns.
FRUGAL_SIMD_INLINE VF bit_or(VF a, VF b) { return _mm256_or_ps(a, b); }
// Lane j = sum of the lanes of v[j], for kLanes vectors (three rounds of pairwise sums instead of
// eight separate reductions).
FRUGAL_SIMD_INLINE VF hsum_each(const VF v[8]) {
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  // a: sums of v0..v3 over the low 128-bit halves | over the high ones; b likewise for v4..v7.
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
