// AVX-512 versions of the non-GEMM ops, and the table entries of the AVX-512 level. Each mirrors
// its scalar oracle in ref/ref_ops.cpp; the differences are summation order, FMA contraction and
// exp512's few-ulp error (bounds in tests/kernels/ops_test.cpp).
#include "kernels/ref/ref.h"
#include "kernels/x86/avx512_common.h"
#include "kernels/x86/x86.h"

namespace frugal::kernels::avx512 {
namespace {

constexpr float kNegInf = -__builtin_inff();

FRUGAL_AVX512_INLINE float max_lanes(__m512 v) { return _mm512_reduce_max_ps(v); }

float sum_squares(const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    const __m512 v2 = _mm512_loadu_ps(x + i + 32), v3 = _mm512_loadu_ps(x + i + 48);
    a0 = _mm512_fmadd_ps(v0, v0, a0);
    a1 = _mm512_fmadd_ps(v1, v1, a1);
    a2 = _mm512_fmadd_ps(v2, v2, a2);
    a3 = _mm512_fmadd_ps(v3, v3, a3);
  }
  for (; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(lanes16(n - i), x + i);
    a0 = _mm512_fmadd_ps(v, v, a0);
  }
  return hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  const float r = 1.0f / __builtin_sqrtf(sum_squares(x, n) / static_cast<float>(n) + eps);
  const __m512 rv = _mm512_set1_ps(r);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), rv);
    if (w != nullptr) v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + i), v);
    _mm512_mask_storeu_ps(out + i, m, v);
  }
}

// Pairs (2i, 2i+1) of the last rope_dim dims: (a, b) -> (a c - b s, a s + b c), s negated for the
// inverse. cos/sin[i] are spread to both lanes of pair i; the pair swap is an in-lane permute.
void rope(float* x, int64_t n_vec, int64_t dim, int64_t rope_dim, const float* cos,
          const float* sin, RopeDirection dir) {
  const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const float se = dir == RopeDirection::kInverse ? 1.0f : -1.0f;  // sign of s in even lanes
  const __m512 sign =
      _mm512_setr_ps(se, -se, se, -se, se, -se, se, -se, se, -se, se, -se, se, -se, se, -se);
  for (int64_t v = 0; v < n_vec; ++v) {
    float* p = x + v * dim + (dim - rope_dim);
    for (int64_t i = 0; i < rope_dim; i += 16) {
      const __mmask16 m = lanes16(rope_dim - i);
      const int64_t half = (rope_dim - i) / 2;
      const __mmask16 mh = lanes16(half < 8 ? half : 8);
      const __m512 c = _mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(mh, cos + i / 2));
      const __m512 s =
          _mm512_mul_ps(_mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(mh, sin + i / 2)), sign);
      const __m512 a = _mm512_maskz_loadu_ps(m, p + i);
      const __m512 swapped = _mm512_permute_ps(a, 0xb1);
      _mm512_mask_storeu_ps(p + i, m,
                            _mm512_add_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(swapped, s)));
    }
  }
}

void softmax(float* x, int64_t n) {
  __m512 mx = _mm512_set1_ps(kNegInf);
  for (int64_t i = 0; i < n; i += 16) {
    mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(kNegInf), lanes16(n - i), x + i));
  }
  const __m512 m = _mm512_set1_ps(max_lanes(mx));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m));
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
    _mm512_mask_storeu_ps(x + i, k, e);
  }
  const __m512 s = _mm512_set1_ps(hsum(sum));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    _mm512_mask_storeu_ps(x + i, k, _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), s));
  }
}

void swiglu(const float* gate, const float* up, int64_t n, float limit, float scale, float* out) {
  const __m512 lim = _mm512_set1_ps(limit), neg = _mm512_set1_ps(-limit);
  const __m512 sc = _mm512_set1_ps(scale), one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    __m512 g = _mm512_maskz_loadu_ps(k, gate + i), u = _mm512_maskz_loadu_ps(k, up + i);
    if (limit > 0.0f) {
      g = _mm512_min_ps(g, lim);
      u = _mm512_max_ps(_mm512_min_ps(u, lim), neg);
    }
    const __m512 silu =
        _mm512_div_ps(g, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(sc, _mm512_mul_ps(silu, u)));
  }
}

void weighted_sum(const float* x, const float* c, int64_t k, int64_t n, float* out) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    __m512 s = _mm512_setzero_ps();
    for (int64_t j = 0; j < k; ++j) {
      s = _mm512_fmadd_ps(_mm512_set1_ps(c[j]), _mm512_maskz_loadu_ps(m, x + j * n + i), s);
    }
    _mm512_mask_storeu_ps(out + i, m, s);
  }
}

void hc_post(const HcPostArgs& a, int64_t t) {
  const int64_t hc = a.hc_mult, n = a.dim;
  const float* y = a.y + t * n;
  const float* x = a.x + t * hc * n;
  const float* post = a.post + t * hc;
  const float* comb = a.comb + t * hc * hc;
  float* out = a.out + t * hc * n;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    const __m512 yv = _mm512_maskz_loadu_ps(m, y + i);
    for (int64_t k = 0; k < hc; ++k) {
      __m512 s = _mm512_mul_ps(_mm512_set1_ps(post[k]), yv);
      for (int64_t j = 0; j < hc; ++j) {
        s = _mm512_fmadd_ps(_mm512_set1_ps(comb[j * hc + k]),
                            _mm512_maskz_loadu_ps(m, x + j * n + i), s);
      }
      _mm512_mask_storeu_ps(out + k * n + i, m, s);
    }
  }
}

// Twelve independent chains: more than FMA latency (4) x ports (2), so the loop runs at the
// FMA throughput.
uint64_t fma_peak(int64_t iters) {
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
  return static_cast<uint64_t>(iters) * 12 * 16 * 2;
}

uint64_t read_stream(const uint64_t* p, int64_t n_words) {
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

}  // namespace

}  // namespace frugal::kernels::avx512

namespace frugal::kernels {

void install_avx512(OpTable* t) {
  t->matmul[static_cast<int>(quant::WeightFormat::kF32)] = avx512::matmul_f32;
  t->matmul[static_cast<int>(quant::WeightFormat::kBF16)] = avx512::matmul_bf16;
  t->matmul[static_cast<int>(quant::WeightFormat::kFP8Block)] = avx512::matmul_fp8;
  t->matmul[static_cast<int>(quant::WeightFormat::kMXFP4)] = avx512::matmul_mxfp4;
  t->rms_norm = avx512::rms_norm;
  t->rope = avx512::rope;
  t->softmax = avx512::softmax;
  t->attention = avx512::attention;
  t->swiglu = avx512::swiglu;
  t->sum_squares = avx512::sum_squares;
  t->weighted_sum = avx512::weighted_sum;
  t->hc_post = avx512::hc_post;
  t->fma_peak = avx512::fma_peak;
  t->read_stream = avx512::read_stream;
}

}  // namespace frugal::kernels
