// The machine probes (Kernels::fma_peak, Kernels::read_stream) at the target's widest vectors:
// the limits frugal bench and bench/ rate the kernels against.
#include "kernels/simd/simd.h"
#include "kernels/simd/target.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {

// Twelve independent chains: more than FMA latency (4) x ports (2), so the loop runs at the
// FMA throughput.
uint64_t fma_peak(int64_t iters) {
  VF acc[12];
  for (auto& a : acc) a = set1(1.0f);
  const VF m = set1(0.999999f), c = set1(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (auto& a : acc) a = fmadd(a, m, c);
  }
  VF s = acc[0];
  for (int j = 1; j < 12; ++j) s = add(s, acc[j]);
  volatile float sink = hsum(s);
  (void)sink;
  return static_cast<uint64_t>(iters) * 12 * kLanes * 2;
}

// Four streams a quarter of the range apart, each a vector of kLanes / 2 words per step, OR-ed
// together (as f32 bit patterns: loads and bitwise ops do not look at the values).
uint64_t read_stream(const uint64_t* p, int64_t n_words) {
  constexpr int64_t kWords = kLanes / 2;
  const int64_t q = n_words / 4 / kWords * kWords;
  const auto* f = reinterpret_cast<const float*>(p);
  VF a0 = zero(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i < q; i += kWords) {
    a0 = bit_or(a0, load(f + 2 * i));
    a1 = bit_or(a1, load(f + 2 * (q + i)));
    a2 = bit_or(a2, load(f + 2 * (2 * q + i)));
    a3 = bit_or(a3, load(f + 2 * (3 * q + i)));
  }
  alignas(64) uint64_t w[kWords];
  store(reinterpret_cast<float*>(w), bit_or(bit_or(a0, a1), bit_or(a2, a3)));
  uint64_t s = 0;
  for (int64_t j = 0; j < kWords; ++j) s |= w[j];
  return s;
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
