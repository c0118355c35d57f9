// FMA peak probe, AVX2: 12 independent accumulator chains.
#include <immintrin.h>

#include "bench_util.h"

namespace frugal::bench {

uint64_t fma_peak_avx2(int64_t iters) {
  __m256 acc[12];
  for (auto& a : acc) a = _mm256_set1_ps(1.0f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (auto& a : acc) a = _mm256_fmadd_ps(a, m, c);
  }
  __m256 s = acc[0];
  for (int j = 1; j < 12; ++j) s = _mm256_add_ps(s, acc[j]);
  volatile float sink = _mm256_cvtss_f32(s);
  (void)sink;
  return static_cast<uint64_t>(iters) * 12 * 8;
}

}  // namespace frugal::bench
