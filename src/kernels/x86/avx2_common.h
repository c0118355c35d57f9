// Helpers shared by the AVX2 kernel files (included only by files built with AVX2 + FMA + F16C).
// Everything has internal linkage (static), like avx512_common.h.
#pragma once

#include <immintrin.h>

#include <cstdint>

#define FRUGAL_AVX2_INLINE static inline __attribute__((always_inline))

namespace frugal::kernels::avx2 {

// Decode GEMV prefetch of the next row group into L2 (see avx512_common.h for why and the
// measurement).
FRUGAL_AVX2_INLINE void prefetch_next_group(const void* p, int64_t group_bytes) {
  _mm_prefetch(static_cast<const char*>(p) + group_bytes, _MM_HINT_T1);
}

// Tokens per register-blocked group: AVX2 has 16 ymm registers, so groups stay small.
inline constexpr int kMaxTokens = 4;
// From this many tokens on, matmuls decode each weight tile once (avx2_gemm.cpp).
inline constexpr int64_t kGemmMinTokens = 16;
inline constexpr int64_t kPrepFloats = 8192;
inline constexpr int64_t kRowBlockBytes = int64_t{512} << 10;

FRUGAL_AVX2_INLINE float e8m0_f32(uint8_t c) {
  return c == 0 ? 0x1p-127f : __builtin_bit_cast(float, static_cast<uint32_t>(c) << 23);
}

// Lane mask (all ones in the first n of 8 lanes) for maskload / maskstore.
FRUGAL_AVX2_INLINE __m256i lanes8(int64_t n) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int c = n <= 0 ? 0 : (n >= 8 ? 8 : static_cast<int>(n));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), iota);
}

// 16 e4m3 codes -> 16 f32 values times 2^-8, exactly (see avx512_common.h: the e4m3 bits are
// widened to the f16 with the same sign, exponent and mantissa).
FRUGAL_AVX2_INLINE void fp8x16_to_f32(__m128i codes, __m256* lo, __m256* hi) {
  __m256i h = _mm256_cvtepi8_epi16(codes);
  h = _mm256_and_si256(_mm256_slli_epi16(h, 7), _mm256_set1_epi16(static_cast<int16_t>(0xBFFF)));
  *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
  *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

// One 64-element chunk (32 packed bytes at p) -> 8 vectors of 8 f32, exactly. Every e2m1 value is
// a bf16 number, so two in-lane byte tables (vpshufb, 16 entries = the 16 codes) give the high
// and low byte of its bf16 pattern; interleaving them makes bf16 words, and a word's bits moved
// to the top of a dword (shift for even words, mask for odd ones) are its f32. 24 vector ops per
// 64 weights incl. the 8 FMAs, against 36 with an 8-entry vpermps lookup per vector, and one
// plain load instead of four overlapping ones.
//
// Order: all steps stay inside 128-bit lanes, so lane L (bytes 16L..16L+15) holds scale block L
// of the chunk. Vector j = 4h + 2u + p, dword d of lane L is byte k = 8u + 2d + p of that lane,
// nibble h: element 2(16L + k) + h (fp4_order).
FRUGAL_AVX2_INLINE void fp4_decode(const uint8_t* p, __m256 v[8]) {
  const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  // bf16 of 0, .5, 1, 1.5, 2, 3, 4, 6 and their negatives: 0x0000 3F00 3F80 3FC0 4000 4040 4080
  // 40C0 (| 0x8000).
  const __m256i hi_tab = _mm256_broadcastsi128_si256(
      _mm_setr_epi8(0x00, 0x3f, 0x3f, 0x3f, 0x40, 0x40, 0x40, 0x40, static_cast<char>(0x80),
                    static_cast<char>(0xbf), static_cast<char>(0xbf), static_cast<char>(0xbf),
                    static_cast<char>(0xc0), static_cast<char>(0xc0), static_cast<char>(0xc0),
                    static_cast<char>(0xc0)));
  const __m256i lo_tab = _mm256_broadcastsi128_si256(_mm_setr_epi8(
      0x00, 0x00, static_cast<char>(0x80), static_cast<char>(0xc0), 0x00, 0x40,
      static_cast<char>(0x80), static_cast<char>(0xc0), 0x00, 0x00, static_cast<char>(0x80),
      static_cast<char>(0xc0), 0x00, 0x40, static_cast<char>(0x80), static_cast<char>(0xc0)));
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i top = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  const __m256i codes[2] = {_mm256_and_si256(bytes, nib),
                            _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nib)};
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

// fp4_order[8j + 4L + d]: the chunk element that fp4_decode puts in dword 4L + d of vector j.
struct Fp4Order {
  int8_t at[64];
  constexpr Fp4Order() : at() {
    for (int j = 0; j < 8; ++j) {
      const int h = j / 4, u = (j / 2) % 2, p = j % 2;
      for (int lane = 0; lane < 2; ++lane) {
        for (int d = 0; d < 4; ++d) {
          at[8 * j + 4 * lane + d] = 2 * (16 * lane + 8 * u + 2 * d + p) + h;
        }
      }
    }
  }
};
static constexpr Fp4Order kFp4Order;

// Two e8m0 codes (the scales of one 64-element FP4 chunk) -> lanes 0-3 scale 0, lanes 4-7 scale 1,
// in vector ops (code 0 -> 2^-127, as e8m0_f32).
FRUGAL_AVX2_INLINE __m256 fp4_chunk_scales(uint8_t s0, uint8_t s1) {
  const __m128i two = _mm_cvtsi32_si128(s0 | (s1 << 8));
  const __m128i spread =
      _mm_shuffle_epi8(two, _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1));
  const __m256i e = _mm256_slli_epi32(_mm256_cvtepu8_epi32(spread), 23);
  return _mm256_castsi256_ps(_mm256_max_epu32(e, _mm256_set1_epi32(0x00400000)));
}

FRUGAL_AVX2_INLINE float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// e^x as exp512 in avx512_common.h (Cody-Waite reduction, degree-7 Taylor polynomial), with 2^n
// built in the exponent field: x is clamped to [-87.3, 88.3] so n stays in [-126, 127], and
// inputs below -87.3 (results below 2^-126) give 0 instead of a subnormal.
FRUGAL_AVX2_INLINE __m256 exp256(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 tiny = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);  // also true for -inf
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3f)), lo);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

FRUGAL_AVX2_INLINE float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace frugal::kernels::avx2
