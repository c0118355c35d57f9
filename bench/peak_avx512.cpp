// FMA peak probe, AVX-512: 12 independent accumulator chains (latency 4 x 2 ports < 12).
#include <immintrin.h>

#include "bench_util.h"

namespace frugal::bench {

uint64_t fma_peak_avx512(int64_t iters) {
  __m512 acc[12];
  for (auto& a : acc) a = _mm512_set1_ps(1.0f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (auto& a : acc) a = _mm512_fmadd_ps(a, m, c);
  }
  __m512 s = acc[0];
  for (int j = 1; j < 12; ++j) s = _mm512_add_ps(s, acc[j]);
  volatile float sink = _mm512_cvtss_f32(s);
  (void)sink;
  return static_cast<uint64_t>(iters) * 12 * 16;
}

}  // namespace frugal::bench

namespace frugal::bench {

// Read-bandwidth probe, AVX-512: 64-byte loads from four streams a quarter of the range apart
// (like a GEMV reading several rows), OR-reduced so nothing is optimised away.
uint64_t read_stream_avx512(const uint64_t* p, int64_t n_words) {
  const int64_t q = n_words / 4 / 8 * 8;
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i < q; i += 8) {
    a0 = _mm512_or_si512(a0, _mm512_load_si512(p + i));
    a1 = _mm512_or_si512(a1, _mm512_load_si512(p + q + i));
    a2 = _mm512_or_si512(a2, _mm512_load_si512(p + 2 * q + i));
    a3 = _mm512_or_si512(a3, _mm512_load_si512(p + 3 * q + i));
  }
  const __m512i s = _mm512_or_si512(_mm512_or_si512(a0, a1), _mm512_or_si512(a2, a3));
  return static_cast<uint64_t>(_mm512_reduce_or_epi64(s));
}

}  // namespace frugal::bench
