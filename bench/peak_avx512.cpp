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
