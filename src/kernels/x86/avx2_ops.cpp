// AVX2 versions of the non-GEMM ops (the AVX-512 ones in avx512_ops.cpp at 8 lanes), and the table
// entries of the AVX2 level. Tails use maskload / maskstore.
#include "kernels/x86/avx2_common.h"
#include "kernels/x86/x86.h"

namespace frugal::kernels::avx2 {
namespace {

constexpr float kNegInf = -__builtin_inff();

float sum_squares(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    const __m256 v2 = _mm256_loadu_ps(x + i + 16), v3 = _mm256_loadu_ps(x + i + 24);
    a0 = _mm256_fmadd_ps(v0, v0, a0);
    a1 = _mm256_fmadd_ps(v1, v1, a1);
    a2 = _mm256_fmadd_ps(v2, v2, a2);
    a3 = _mm256_fmadd_ps(v3, v3, a3);
  }
  for (; i < n; i += 8) {
    const __m256 v = _mm256_maskload_ps(x + i, lanes8(n - i));
    a0 = _mm256_fmadd_ps(v, v, a0);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  const __m256 r =
      _mm256_set1_ps(1.0f / __builtin_sqrtf(sum_squares(x, n) / static_cast<float>(n) + eps));
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lanes8(n - i);
    __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), r);
    if (w != nullptr) v = _mm256_mul_ps(_mm256_maskload_ps(w + i, m), v);
    _mm256_maskstore_ps(out + i, m, v);
  }
}

void softmax(float* x, int64_t n) {
  __m256 mx = _mm256_set1_ps(kNegInf);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lanes8(n - i);
    const __m256 v = _mm256_blendv_ps(_mm256_set1_ps(kNegInf), _mm256_maskload_ps(x + i, m),
                                      _mm256_castsi256_ps(m));
    mx = _mm256_max_ps(mx, v);
  }
  const __m256 m = _mm256_set1_ps(hmax(mx));
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = lanes8(n - i);
    const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), m)),
                                   _mm256_castsi256_ps(k));
    sum = _mm256_add_ps(sum, e);
    _mm256_maskstore_ps(x + i, k, e);
  }
  const __m256 s = _mm256_set1_ps(hsum(sum));
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = lanes8(n - i);
    _mm256_maskstore_ps(x + i, k, _mm256_div_ps(_mm256_maskload_ps(x + i, k), s));
  }
}

void swiglu(const float* gate, const float* up, int64_t n, float limit, float scale, float* out) {
  const __m256 lim = _mm256_set1_ps(limit), neg = _mm256_set1_ps(-limit);
  const __m256 sc = _mm256_set1_ps(scale), one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = lanes8(n - i);
    __m256 g = _mm256_maskload_ps(gate + i, k), u = _mm256_maskload_ps(up + i, k);
    if (limit > 0.0f) {
      g = _mm256_min_ps(g, lim);
      u = _mm256_max_ps(_mm256_min_ps(u, lim), neg);
    }
    // e^-g overflows for g < -88.3: exp256 clamps, so take silu = -0 there explicitly.
    const __m256 big = _mm256_cmp_ps(g, _mm256_set1_ps(-88.3f), _CMP_LT_OQ);
    __m256 silu =
        _mm256_div_ps(g, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
    silu = _mm256_blendv_ps(silu, _mm256_set1_ps(-0.0f), big);
    _mm256_maskstore_ps(out + i, k, _mm256_mul_ps(sc, _mm256_mul_ps(silu, u)));
  }
}

void weighted_sum(const float* x, const float* c, int64_t k, int64_t n, float* out) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lanes8(n - i);
    __m256 s = _mm256_setzero_ps();
    for (int64_t j = 0; j < k; ++j) {
      s = _mm256_fmadd_ps(_mm256_set1_ps(c[j]), _mm256_maskload_ps(x + j * n + i, m), s);
    }
    _mm256_maskstore_ps(out + i, m, s);
  }
}

void hc_post(const HcPostArgs& a, int64_t t) {
  const int64_t hc = a.hc_mult, n = a.dim;
  const float* y = a.y + t * n;
  const float* x = a.x + t * hc * n;
  const float* post = a.post + t * hc;
  const float* comb = a.comb + t * hc * hc;
  float* out = a.out + t * hc * n;
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lanes8(n - i);
    const __m256 yv = _mm256_maskload_ps(y + i, m);
    for (int64_t k = 0; k < hc; ++k) {
      __m256 s = _mm256_mul_ps(_mm256_set1_ps(post[k]), yv);
      for (int64_t j = 0; j < hc; ++j) {
        s = _mm256_fmadd_ps(_mm256_set1_ps(comb[j * hc + k]), _mm256_maskload_ps(x + j * n + i, m),
                            s);
      }
      _mm256_maskstore_ps(out + k * n + i, m, s);
    }
  }
}

// Twelve independent chains: more than FMA latency (4) x ports (2), so the loop runs at the
// FMA throughput.
uint64_t fma_peak(int64_t iters) {
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
  return static_cast<uint64_t>(iters) * 12 * 8 * 2;
}

uint64_t read_stream(const uint64_t* p, int64_t n_words) {
  const int64_t q = n_words / 4 / 4 * 4;
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i < q; i += 4) {
    a0 = _mm256_or_si256(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_or_si256(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + q + i)));
    a2 = _mm256_or_si256(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 2 * q + i)));
    a3 = _mm256_or_si256(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 3 * q + i)));
  }
  const __m256i s = _mm256_or_si256(_mm256_or_si256(a0, a1), _mm256_or_si256(a2, a3));
  return static_cast<uint64_t>(_mm256_extract_epi64(s, 0) | _mm256_extract_epi64(s, 1) |
                               _mm256_extract_epi64(s, 2) | _mm256_extract_epi64(s, 3));
}

}  // namespace

}  // namespace frugal::kernels::avx2

namespace frugal::kernels {

void install_avx2(OpTable* t) {
  t->matmul[static_cast<int>(quant::WeightFormat::kF32)] = avx2::matmul_f32;
  t->matmul[static_cast<int>(quant::WeightFormat::kBF16)] = avx2::matmul_bf16;
  t->matmul[static_cast<int>(quant::WeightFormat::kFP8Block)] = avx2::matmul_fp8;
  t->matmul[static_cast<int>(quant::WeightFormat::kMXFP4)] = avx2::matmul_mxfp4;
  t->rms_norm = avx2::rms_norm;
  t->softmax = avx2::softmax;
  t->attention = avx2::attention;
  t->swiglu = avx2::swiglu;
  t->sum_squares = avx2::sum_squares;
  t->weighted_sum = avx2::weighted_sum;
  t->hc_post = avx2::hc_post;
  t->fma_peak = avx2::fma_peak;
  t->read_stream = avx2::read_stream;
}

}  // namespace frugal::kernels
