// Helpers shared by the AVX-512 kernel files (included only by files built with AVX-512 flags).
// Everything here has internal linkage (static), so no copy compiled with AVX-512 instructions
// can be picked by the linker for a baseline caller.
#pragma once

#include <immintrin.h>

#include <cstdint>

#define FRUGAL_AVX512_INLINE static inline __attribute__((always_inline))

namespace frugal::kernels::avx512 {

// Tokens handled together by the register-blocked matmul kernels (more are done in groups).
inline constexpr int kMaxTokens = 8;
// From this many tokens on, matmuls decode each weight tile once (avx512_gemm.cpp) instead of
// once per group of kMaxTokens.
inline constexpr int64_t kGemmMinTokens = 24;
// f32 values of x prepared per pass (per token group): 32 KiB on the stack.
inline constexpr int64_t kPrepFloats = 8192;
// With more than kMaxTokens tokens, rows are processed in blocks of about this many weight bytes
// so that every token group after the first reads them from L2, not from memory.
inline constexpr int64_t kRowBlockBytes = int64_t{512} << 10;

// Decode GEMV prefetch: while R rows are being read, the rows of the next group (the same
// columns, R rows further on) are prefetched into L2, one line per 64 bytes read. Rows of V4
// matrices are 1-16 KiB, so the hardware streamers, which do not cross 4 KiB pages, restart at
// every row; the software stream keeps the memory queue full across those restarts. L2 rather
// than L1: the L2 can have more misses in flight than the L1's fill buffers, and a group of f32
// rows (4 x 16 KiB) would not fit in L1. Measured on a 640 MiB ring of FP8 [4096, 4096], 2
// threads: 21.1 GB/s without, 25.4 GB/s with (docs/BENCHMARKS.md has every format).
FRUGAL_AVX512_INLINE void prefetch_next_group(const void* p, int64_t group_bytes) {
  _mm_prefetch(static_cast<const char*>(p) + group_bytes, _MM_HINT_T1);
}

// The MXFP4 GEMV's variant: the next group into L1 and the group 8 groups ahead into L2. Its
// four offset loads per 64 bytes straddle cache lines and run from L1 much better than from L2;
// with the lines already in L1 a core streams [2048, 4096] matrices at 12.4 GB/s instead of 10.7
// (2 threads: 22.3-22.9 GB/s instead of 19.8-20.2, on the same 640 MiB ring). FP8 gained nothing.
FRUGAL_AVX512_INLINE void prefetch_two_level(const void* p, int64_t group_bytes) {
  _mm_prefetch(static_cast<const char*>(p) + group_bytes, _MM_HINT_T0);
  _mm_prefetch(static_cast<const char*>(p) + 8 * group_bytes, _MM_HINT_T1);
}

// e8m0 code -> 2^(c - 127), exact (code 0 is the f32 subnormal 2^-127; 0xff is rejected at load).
FRUGAL_AVX512_INLINE float e8m0_f32(uint8_t c) {
  return c == 0 ? 0x1p-127f : __builtin_bit_cast(float, static_cast<uint32_t>(c) << 23);
}

// Masks of the first n lanes / bytes (any n; n <= 0 gives an empty mask).
FRUGAL_AVX512_INLINE __mmask16 lanes16(int64_t n) {
  return n >= 16  ? static_cast<__mmask16>(0xffff)
         : n <= 0 ? static_cast<__mmask16>(0)
                  : static_cast<__mmask16>((1u << n) - 1);
}
FRUGAL_AVX512_INLINE __mmask32 bytes32(int64_t n) {
  return n >= 32 ? ~__mmask32{0} : n <= 0 ? __mmask32{0} : static_cast<__mmask32>((1u << n) - 1);
}
FRUGAL_AVX512_INLINE __mmask64 bytes64(int64_t n) {
  return n >= 64 ? ~__mmask64{0} : n <= 0 ? __mmask64{0} : ((__mmask64{1} << n) - 1);
}

// 32 e4m3 codes -> 32 f32 values times 2^-8, exactly. Each code is widened to the f16 with the
// same sign, exponent and mantissa bits: f16 (5 exponent bits, bias 15, 10 mantissa bits) holds
// every e4m3 value (4 exponent bits, bias 7, 3 mantissa bits) incl. subnormals scaled by
// 2^(7 - 15), and vcvtph2ps converts f16 exactly. NaN codes (0x7f/0xff) would decode as 480;
// loaders reject them (quant::check_weight_codes).
FRUGAL_AVX512_INLINE void fp8x32_to_f32(__m256i codes, __m512* lo, __m512* hi) {
  __m512i h = _mm512_cvtepi8_epi16(codes);  // sign-extended: the sign lands on bit 15 below
  h = _mm512_and_si512(_mm512_slli_epi16(h, 7), _mm512_set1_epi16(static_cast<int16_t>(0xBFFF)));
  *lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
  *hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
}

// The 16 e2m1 values; vpermps indexes it with the low 4 bits of each dword.
FRUGAL_AVX512_INLINE __m512 fp4_table() {
  return _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, -0.0f, -0.5f, -1.0f, -1.5f,
                        -2.0f, -3.0f, -4.0f, -6.0f);
}

// Sum of the 16 lanes (tree order).
FRUGAL_AVX512_INLINE float hsum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));  // + other 256-bit half
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xb1));  // + neighbouring 128-bit lane
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4e));        // + other 64-bit pair
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xb1));        // + neighbouring lane
  return _mm512_cvtss_f32(v);
}

// r[j] = sum of the lanes of v[perm(j)] for 16 vectors, in 30 shuffles + adds instead of 16
// separate reductions. The tree (halves of pairs, 128-bit lanes of pairs, then pairs and singles
// inside 128-bit lanes) leaves the sum of input s = 4m + k in lane 4k + m, so the inputs are
// taken transposed (input 4m + k = v[4k + m]) and r[j] = sum(v[j]).
FRUGAL_AVX512_INLINE __m512 hsum16(const __m512 v[16]) {
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

// e^x, within a few ulp of the correctly rounded value: x = n ln2 + r with n = round(x / ln2)
// and r from a two-constant Cody-Waite reduction (|r| <= ln2 / 2, exact products: ln2_hi has 16
// significant bits and |n| < 2^8); e^r by its degree-7 Taylor polynomial (truncation below
// 6e-9 relative), evaluated by Horner with FMAs; 2^n applied by vscalefps, which overflows to
// inf and underflows gradually to 0 like exp. Inputs below -110 give exactly 0 (e^-110 is below
// half the smallest subnormal), so -inf gives 0.
FRUGAL_AVX512_INLINE __m512 exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(100.0f)), _mm512_set1_ps(-110.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace frugal::kernels::avx512
