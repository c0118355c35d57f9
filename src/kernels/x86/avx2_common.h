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

// Two e8m0 codes (the scales of one 64-element FP4 chunk) -> lanes 0-3 scale 0, lanes 4-7 scale 1,
// in vector ops (code 0 -> 2^-127, as e8m0_f32).
FRUGAL_AVX2_INLINE __m256 fp4_chunk_scales(uint8_t s0, uint8_t s1) {
  const __m128i two = _mm_cvtsi32_si128(s0 | (s1 << 8));
  const __m128i spread = _mm_shuffle_epi8(two, _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, -1, -1, -1,
                                                             -1, -1, -1, -1, -1));
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
