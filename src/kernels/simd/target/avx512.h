// Vocabulary of the generic kernels (src/kernels/simd/*.cpp) for AVX-512 F/BW/DQ/VL: 16 f32
// lanes. Included through simd/target.h only, by files compiled with the AVX-512 flags. Every
// function has internal linkage and is always inlined, so no AVX-512 copy can be picked by the
// linker for a baseline caller, and the generic code compiles to what hand-written intrinsics do.
// The names and their meaning are the same in every target header (avx2.h, neon.h).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {

using VF = __m512;
inline constexpr int kLanes = 16;

// ---- Masks (internal) ----

FRUGAL_SIMD_INLINE __mmask16 lanes16(int64_t n) {
  return n >= 16  ? static_cast<__mmask16>(0xffff)
         : n <= 0 ? static_cast<__mmask16>(0)
                  : static_cast<__mmask16>((1u << n) - 1);
}
FRUGAL_SIMD_INLINE __mmask32 bytes32(int64_t n) {
  return n >= 32 ? ~__mmask32{0} : n <= 0 ? __mmask32{0} : static_cast<__mmask32>((1u << n) - 1);
}
FRUGAL_SIMD_INLINE __mmask64 bytes64(int64_t n) {
  return n >= 64 ? ~__mmask64{0} : n <= 0 ? __mmask64{0} : ((__mmask64{1} << n) - 1);
}

// ---- f32 vectors (zero, add, sub, mul, div, load, loadu, store, storeu: common.h) ----

FRUGAL_SIMD_INLINE VF set1(float v) { return _mm512_set1_ps(v); }
// a * b + c and c - a * b, one rounding.
FRUGAL_SIMD_INLINE VF fmadd(VF a, VF b, VF c) { return _mm512_fmadd_ps(a, b, c); }
FRUGAL_SIMD_INLINE VF fnmadd(VF a, VF b, VF c) { return _mm512_fnmadd_ps(a, b, c); }
// Nearest integer (ties to even), as f32.
FRUGAL_SIMD_INLINE VF round_nearest(VF a) {
  return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS

#include "kernels/simd/target/common.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {

// ---- Tuning of the matmul kernels (fields: MatmulTuning in common.h) ----
//
// 32 registers: GEMV groups of 8 tokens; FP8 4 rows x 1-2 tokens / 2 rows x more, MXFP4 2 rows
// up to 4 tokens. MXFP4 prefetches the next row group into L1 as well as 8 groups ahead into L2
// (AMD Zen 4, with the former four offset loads per chunk: a core streamed [2048, 4096] matrices
// at 12.4 GB/s instead of 10.7; with one load per chunk on Zen 5, 2 threads 30-37 GB/s against
// 30 with the next group into L2 only and 31 into L1 only, 640 MiB ring).
// Dense groups of 4 tokens x 4 rows: groups of 8 (2 rows x 8 tokens) in whole bf16 lines ran out
// of registers and reloaded x for every row (BM_Matmul 2 threads m:8, bf16 1.59 -> 0.99 ms, f32
// 3.22 -> 2.22 ms); bf16 has groups of 8 again in single vectors (below).
// bf16 with one token (decode: the head) reads one row at a time, a single sequential stream per
// thread, with its two accumulator chains: a core streamed [4096, 4096] at 30.7-33.2 GB/s instead
// of 26.0-27.1 with 4 rows (AMD Zen 5, six processes each, read probe 34.5-39.1 GB/s on one thread);
// on 2 threads, where the probe itself moved between 37 and 76 GB/s, the head [129280, 4096] took
// 21.3-23.9 ms against 19.5-28.7. f32 keeps 4 rows (one row ran 0.9x: a single chain per row), and
// bf16 with 2 tokens measured the same with 1, 2 or 4. bf16 with 2-4 tokens in 2 rows: 0.94-0.96x
// on one thread (m = 4, 8), 0.72-1.15x on two (noise of the memory): kept at 4.
// f32 with 5-8 tokens (two groups of 4) reads rows in blocks of 256 KiB, the second group from
// L2, and the second group prefetches the next block, so the first group's reads no longer stall
// on memory while the second group's leave it idle: BM_Matmul 2 threads m:8 f32 1.00-1.06x, and
// then bf16 1.15-1.21x, the head [129280, 4096] 1.10-1.17x (AMD Zen 5, three series of alternated
// processes, medians of 4-5; with 512 KiB blocks the two blocks thrashed the 1 MiB L2:
// 1.01-1.05x). Each group prefetching its share of the next block instead ran 0.84-0.93x.
// bf16 with 5-8 tokens (a batched step's head) now runs as one group of 2 rows x T tokens in the
// same blocks, prefetching the next one (dense_block_min_tokens), in single vectors, not lines
// (bf16_line_tokens), so that x of all tokens stays in registers and each line is decoded once
// instead of once per group of 4: against the two groups, BM_Matmul m:8 bf16 [4096, 4096] 1 thread
// 1.24x / 1.26x / 1.25x, 2 threads 1.16x / 1.17x / 0.96x (the last with the memory of the minute),
// the head 1.04x / 1.07x / 1.09x (three series of 3 rounds); m = 12 / 16 1.07x / 1.19x. In lines
// (one load of x per FMA) the same group ran 0.65-0.70x; f32 in one group of 8 ran 0.95x on one
// thread, so f32 keeps the groups of 4. The FP8 groups with 12 tokens (several groups of 8, so row
// blocks too) ran the same with 256 or 512 KiB blocks (1.00x); MXFP4 has several groups only at 9
// tokens (unmeasured).
// bf16 in whole 64-byte lines with two accumulator sets up to 8 rows x tokens: 1.85x faster at
// 4 x 4, 1.1x at 2 x 8 (docs/BENCHMARKS.md). GEMM tile 32 rows x 256, 12 tokens: 24 accumulators.
// MXFP4 (the routed experts: ~12 tokens each in a 512-token chunk, ~48 in a 2,048-token span):
// groups of 2 rows for 5-8 tokens too (1 row: m = 6 / 8 0.89x / 0.87x), the GEMM path from 10
// tokens, and below 32 the k-lane kernel, 4 rows x 4 tokens (16 accumulators, one transpose) in
// passes of 1,024 columns: against the groups / the tile 1.20-1.28x at m = 10-20 and 1.16x at 24
// (BM_Matmul [2048, 4096], 1 and 2 threads). At 48 it was 1.15x in BM_Matmul, but a 8,192-token
// prefill (the experts' ~48-token groups) ran 0.97x with it, in a build that also lost the tile's
// inlined row decode, so its own share is unknown: the tile keeps m >= 32 until re-measured. FP8
// kept its groups and tile (the k-lane kernel was 0.70-0.93x the FP8 groups at 6-20 tokens, 0.87x
// the tile at 48 on 2 threads).
inline constexpr MatmulTuning kMatmul = {
    .max_tokens = 8, .fp8_rows = {4, 4, 2, 2, 2, 2, 2, 2}, .fp4_rows = {2, 2, 2, 2, 2, 2, 2, 2},
    .fp4_prefetch_l1 = true, .fp8_x_once = true, .fp4_x_once = true, .dense_tokens = 4,
    .dense_rows = {4, 4, 4, 4, 2, 2, 2, 2}, .bf16_rows = {1}, .bf16_tokens = 8,
    .bf16_line_tokens = 4,
    .dense_pass_max = 8192, .bf16_lines = true, .gemm_min_tokens = 24, .gemm_rows = 32,
    .gemm_tokens = 12, .fp4_gemm_min_tokens = 10, .fp4_klane_max_tokens = 32, .klane_rows = 4,
    .klane_tokens = 4, .klane_cols = 1024, .row_block_bytes = int64_t{256} << 10,
    .dense_block_ahead = true, .dense_block_min_tokens = 5};

// Lanes [0, n) from p, the rest 0; nothing past p + n is read (any n).
FRUGAL_SIMD_INLINE VF load_n(const float* p, int64_t n) {
  return _mm512_maskz_loadu_ps(lanes16(n), p);
}
// Lanes [0, n) to p; nothing else is written.
FRUGAL_SIMD_INLINE void store_n(float* p, VF v, int64_t n) {
  _mm512_mask_storeu_ps(p, lanes16(n), v);
}
// max / min: the second operand where either is NaN (or both are zeros), as maxps / minps.
FRUGAL_SIMD_INLINE VF max(VF a, VF b) { return _mm512_max_ps(a, b); }
FRUGAL_SIMD_INLINE VF min(VF a, VF b) { return _mm512_min_ps(a, b); }
FRUGAL_SIMD_INLINE VF sqrt(VF a) { return _mm512_sqrt_ps(a); }

// Sum of the 16 lanes (tree order).
FRUGAL_SIMD_INLINE float hsum(VF v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));  // + other 256-bit half
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xb1));  // + neighbouring 128-bit lane
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4e));        // + other 64-bit pair
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xb1));        // + neighbouring lane
  return _mm512_cvtss_f32(v);
}
FRUGAL_SIMD_INLINE float hmax(VF v) { return _mm512_reduce_max_ps(v); }

// e^x within a few ulp of the correctly rounded value (exp_reduced in common.h), with 2^n applied
// by vscalefps, which overflows to inf and underflows gradually to 0 like exp. Inputs below -110
// give exactly 0 (e^-110 is below half the smallest subnormal), so -inf gives 0.
FRUGAL_SIMD_INLINE VF exp(VF x) {
  VF n;
  const VF p = exp_reduced(max(min(x, set1(100.0f)), set1(-110.0f)), &n);
  return _mm512_scalef_ps(p, n);
}

// In-register transpose of kLanes x kLanes values: r[i] lane j -> r[j] lane i (unpack pairs, then
// 64-bit pairs, then 128-bit lanes twice).
FRUGAL_SIMD_INLINE void transpose(VF r[16]) {
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

// ---- bf16 / f16 -> f32 (exact) ----

FRUGAL_SIMD_INLINE VF bf16_widen(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
// kLanes bf16 values at p.
FRUGAL_SIMD_INLINE VF load_bf16(const uint16_t* p) {
  return bf16_widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
// The first n (any n) of kLanes bf16 values, rest 0; nothing past p + n is read.
FRUGAL_SIMD_INLINE VF load_bf16_n(const uint16_t* p, int64_t n) {
  return bf16_widen(_mm256_maskz_loadu_epi16(lanes16(n), p));
}
// 2 * kLanes bf16 values (one 64-byte line) -> lo (first kLanes), hi.
FRUGAL_SIMD_INLINE void load_bf16x2(const uint16_t* p, VF* lo, VF* hi) {
  const __m512i raw = _mm512_loadu_si512(p);
  *lo = bf16_widen(_mm512_castsi512_si256(raw));
  *hi = bf16_widen(_mm512_extracti64x4_epi64(raw, 1));
}
FRUGAL_SIMD_INLINE VF load_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
FRUGAL_SIMD_INLINE VF load_f16_n(const uint16_t* p, int64_t n) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes16(n), p));
}

// ---- FP8 e4m3 ----

// 32 e4m3 codes -> 32 f32 values times 2^-8, exactly. Each code is widened to the f16 with the
// same sign, exponent and mantissa bits: f16 (5 exponent bits, bias 15, 10 mantissa bits) holds
// every e4m3 value (4 exponent bits, bias 7, 3 mantissa bits) incl. subnormals scaled by
// 2^(7 - 15), and vcvtph2ps converts f16 exactly. NaN codes (0x7f/0xff) would decode as 480;
// loaders reject them (quant::check_weight_codes).
FRUGAL_SIMD_INLINE void fp8x32_to_f32(__m256i codes, VF* lo, VF* hi) {
  __m512i h = _mm512_cvtepi8_epi16(codes);  // sign-extended: the sign lands on bit 15 below
  h = _mm512_and_si512(_mm512_slli_epi16(h, 7), _mm512_set1_epi16(static_cast<int16_t>(0xBFFF)));
  *lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
  *hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
}
// 4 * kLanes (64) e4m3 codes at p -> v[0..3] in memory order, each value times 2^-8 (exact).
FRUGAL_SIMD_INLINE void fp8_decode4(const uint8_t* p, VF v[4]) {
  fp8x32_to_f32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), &v[0], &v[1]);
  fp8x32_to_f32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)), &v[2], &v[3]);
}
// The first n codes (any n), the rest decode as 0; nothing past p + n is read.
FRUGAL_SIMD_INLINE void fp8_decode4_n(const uint8_t* p, int64_t n, VF v[4]) {
  fp8x32_to_f32(_mm256_maskz_loadu_epi8(bytes32(n), p), &v[0], &v[1]);
  fp8x32_to_f32(_mm256_maskz_loadu_epi8(bytes32(n - 32), p + 32), &v[2], &v[3]);
}

// ---- MXFP4 e2m1 ----
//
// A chunk is kFp4ChunkBytes packed bytes = 8 * kLanes elements = 4 scale blocks of 32, decoded
// into 8 vectors in the target's lane order (fp4_order). Here: one load of the chunk's 64 bytes;
// dword i holds bytes 4i..4i+3, i.e. elements 8i..8i+7 in its nibbles 0..7, and vpermps reads
// the low 4 bits of each dword, so vector j is the table looked up with the dwords shifted right
// by 4j: it holds elements 8i + j (i = 0..15), the "stride-8" order. (This used four loads at
// byte offsets 0..3, three of them straddling two cache lines: a core streamed [2048, 4096]
// matrices at 14.6 GB/s with them and 21.3 with one load and shifts, 2 threads 25.6 -> 32.8 GB/s;
// BM_Gemv, 640 MiB ring, AMD Zen 5; from L2 1.18x. On Zen 4, whose 512-bit shifts share the FMA
// ports, the one-load decode had measured 9 % slower from L2 on 2026-11-28; its rate from memory
// there was not measured.)
inline constexpr int64_t kFp4ChunkBytes = 4 * kLanes;
struct Fp4Raw {
  __m512i l;
};
FRUGAL_SIMD_INLINE Fp4Raw fp4_load(const uint8_t* p) { return {_mm512_loadu_si512(p)}; }
// A chunk with nb valid bytes (any nb): nothing past p + nb is read; the rest decode as 0.
FRUGAL_SIMD_INLINE Fp4Raw fp4_load_n(const uint8_t* p, int64_t nb) {
  return {_mm512_maskz_loadu_epi8(bytes64(nb), p)};
}
// The 16 e2m1 values; vpermps indexes it with the low 4 bits of each dword.
FRUGAL_SIMD_INLINE VF fp4_table() {
  return _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, -0.0f, -0.5f, -1.0f, -1.5f,
                        -2.0f, -3.0f, -4.0f, -6.0f);
}
// Vector j (0..7) of the chunk, unscaled (exact e2m1 values): nibble j of every dword.
FRUGAL_SIMD_INLINE VF fp4_decode_one(const Fp4Raw& raw, int j) {
  const __m512i idx = j == 0 ? raw.l : _mm512_srli_epi32(raw.l, 4 * j);
  return _mm512_permutexvar_ps(idx, fp4_table());
}
FRUGAL_SIMD_INLINE void fp4_decode(const Fp4Raw& raw, VF v[8]) {
  for (int j = 0; j < 8; ++j) v[j] = fp4_decode_one(raw, j);
}
// The chunk element that lane slot i (0 .. 8 * kLanes) of the decoded vectors holds: slot
// 16j + i is element 8i + j.
constexpr int fp4_order(int i) { return 8 * (i % 16) + i / 16; }
// dst[i] = src[fp4_order(i)] for one chunk (src: 8 * kLanes readable floats).
FRUGAL_SIMD_INLINE void fp4_prepare(const float* src, float* dst) {
  const __m512i idx =
      _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) _mm512_storeu_ps(dst + 16 * j, _mm512_i32gather_ps(idx, src + j, 4));
}
// Scales: one load covers kFp4ScaleChunks chunks (their 16 e8m0 codes; n valid, any n);
// fp4_chunk_scale(s, i) is the scale vector of chunk i of them, lane by lane matching the decoded
// vectors (lane i: block i / 4 of the chunk). Code 0 gives 2^-127, like the scalar e8m0.
inline constexpr int kFp4ScaleChunks = 4;
FRUGAL_SIMD_INLINE VF fp4_scales_load(const uint8_t* s, int64_t n) {
  const __m128i codes = _mm_maskz_loadu_epi8(static_cast<__mmask16>(lanes16(n)), s);
  __m512i e = _mm512_slli_epi32(_mm512_cvtepu8_epi32(codes), 23);
  e = _mm512_max_epu32(e, _mm512_set1_epi32(0x00400000));  // code 0 -> 2^-127
  return _mm512_castsi512_ps(e);
}
FRUGAL_SIMD_INLINE VF fp4_chunk_scale(VF s16, int i) {
  alignas(64) static constexpr int32_t kIdx[4][16] = {
      {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3},
      {4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7},
      {8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11},
      {12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15}};
  return _mm512_permutexvar_ps(_mm512_load_si512(kIdx[i & 3]), s16);
}
// kLanes packed bytes at p -> 2 * kLanes elements in memory order, unscaled: v[0] the first
// kLanes. Even elements come from the low nibbles, odd from the high; interleaved back.
FRUGAL_SIMD_INLINE void fp4_decode_seq(const uint8_t* p, VF v[2]) {
  const __m512 tab = fp4_table();
  const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m512 ev = _mm512_permutexvar_ps(b, tab);
  const __m512 od = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), tab);
  v[0] = _mm512_permutex2var_ps(ev, lo_idx, od);
  v[1] = _mm512_permutex2var_ps(ev, hi_idx, od);
}

// ---- For the ops (ops.cpp, attention.cpp, probes.cpp; added by K2) ----

// Score tile of the attention kernel: entries x 4 heads of accumulators (16 of the 32 registers),
// and vectors of head dims per head in its p * kv step (8 heads x 2 = 16 accumulators).
inline constexpr int kAttnTileEntries = 4;
inline constexpr int kAttnDimVecs = 2;

// Lanes 2i and 2i + 1 exchanged (rope's pair swap).
FRUGAL_SIMD_INLINE VF swap_pairs(VF v) { return _mm512_permute_ps(v, 0xb1); }
// Lanes [0, n) of v, the rest 0 (any n).
FRUGAL_SIMD_INLINE VF keep_n(VF v, int64_t n) { return _mm512_maskz_mov_ps(lanes16(n), v); }
// Per lane a < b ? t : f (false for NaN).
FRUGAL_SIMD_INLINE VF select_lt(VF a, VF b, VF t, VF f) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), f, t);
}
// Bitwise OR of the lanes' bit patterns.
FRUGAL_SIMD_INLINE VF bit_or(VF a, VF b) { return _mm512_or_ps(a, b); }
// Lane j = sum of the lanes of v[j], for kLanes vectors, in 30 shuffles + adds instead of 16
// separate reductions. The tree (halves of pairs, 128-bit lanes of pairs, then pairs and singles
// inside 128-bit lanes) leaves the sum of input s = 4m + k in lane 4k + m, so the inputs are
// taken transposed (input 4m + k = v[4k + m]).
FRUGAL_SIMD_INLINE VF hsum_each(const VF v[16]) {
  __m512 w[8], x[4], y[2];
  for (int j = 0; j < 8; ++j) {
    const __m512 a = v[((2 * j) % 4) * 4 + (2 * j) / 4];
    const __m512 b = v[((2 * j + 1) % 4) * 4 + (2 * j + 1) / 4];
    w[j] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
  }
  for (int j = 0; j < 4; ++j) {
    x[j] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * j], w[2 * j + 1], 0x88),
                         _mm512_shuffle_f32x4(w[2 * j], w[2 * j + 1], 0xdd));
  }
  for (int j = 0; j < 2; ++j) {
    y[j] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * j], x[2 * j + 1], 0x44),
                         _mm512_shuffle_ps(x[2 * j], x[2 * j + 1], 0xee));
  }
  return _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], 0x88), _mm512_shuffle_ps(y[0], y[1], 0xdd));
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
