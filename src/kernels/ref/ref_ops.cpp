// Scalar oracle for the non-GEMM ops; each mirrors a function of the reference model.py.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/ref/ref.h"
#include "quant/act_quant.h"

namespace frugal::kernels::ref {

// RMSNorm.forward: x * rsqrt(mean(x^2) + eps), then times the weight (all f32).
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  const float r = 1.0f / std::sqrt(sum_squares(x, n) / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] * r;
    out[i] = w != nullptr ? w[i] * v : v;
  }
}

// apply_rotary_emb on the last rope_dim dims: pairs (2i, 2i+1) as complex numbers times
// cos_i + i sin_i (conjugate for the inverse).
void rope(float* x, int64_t n_vec, int64_t dim, int64_t rope_dim, const float* cos,
          const float* sin, RopeDirection dir) {
  const float sign = dir == RopeDirection::kInverse ? -1.0f : 1.0f;
  for (int64_t v = 0; v < n_vec; ++v) {
    float* p = x + v * dim + (dim - rope_dim);
    for (int64_t i = 0; i < rope_dim / 2; ++i) {
      const float a = p[2 * i], b = p[2 * i + 1];
      const float c = cos[i], s = sign * sin[i];
      p[2 * i] = a * c - b * s;
      p[2 * i + 1] = a * s + b * c;
    }
  }
}

void softmax(float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;
}

// sparse_attn for query t and heads [h0, h1): two passes over the entries (max, then the
// weighted sum), so no score buffer is needed.
void attention(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1) {
  const int32_t* idx = a.idx + t * a.n_idx;
  const int64_t d = a.head_dim;
  for (int64_t h = h0; h < h1; ++h) {
    const float* q = a.q + (t * a.n_heads + h) * d;
    float* out = a.out + (t * a.n_heads + h) * d;
    auto score = [&](int32_t j) {
      const float* k = a.kv + static_cast<int64_t>(j) * d;
      float s = 0.0f;
      for (int64_t e = 0; e < d; ++e) s += q[e] * k[e];
      return s * a.scale;
    };
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < a.n_idx; ++i) {
      if (idx[i] >= 0) mx = std::max(mx, score(idx[i]));
    }
    std::fill(out, out + d, 0.0f);
    if (mx == -std::numeric_limits<float>::infinity()) continue;  // no real entry
    float den = 0.0f;
    for (int64_t i = 0; i < a.n_idx; ++i) {
      if (idx[i] < 0) continue;
      const float p = std::exp(score(idx[i]) - mx);
      den += p;
      const float* v = a.kv + static_cast<int64_t>(idx[i]) * d;
      for (int64_t e = 0; e < d; ++e) out[e] += p * v[e];
    }
    den += std::exp(a.sink[h] - mx);
    for (int64_t e = 0; e < d; ++e) out[e] /= den;
  }
}

// Expert.forward between w1/w3 and w2: clamp (gate from above only, up both sides), silu(gate) *
// up, times the routing weight.
void fp8_round(const float* x, int64_t n, int64_t block, float* out) {
  if (out != x) std::copy(x, x + n, out);
  quant::fp8_simulate(out, n, block);
}

void swiglu(const float* gate, const float* up, int64_t n, float limit, float scale, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i], u = up[i];
    if (limit > 0.0f) {
      g = std::min(g, limit);
      u = std::clamp(u, -limit, limit);
    }
    const float silu = g / (1.0f + std::exp(-g));
    out[i] = scale * (silu * u);
  }
}

float sum_squares(const float* x, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}

void weighted_sum(const float* x, const float* c, int64_t k, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    float s = 0.0f;
    for (int64_t j = 0; j < k; ++j) s += c[j] * x[j * n + i];
    out[i] = s;
  }
}

// Block.hc_post: out[k] = post[k] * y + sum_j comb[j][k] * x[j].
void hc_post(const HcPostArgs& a, int64_t t) {
  const int64_t hc = a.hc_mult, n = a.dim;
  const float* y = a.y + t * n;
  const float* x = a.x + t * hc * n;
  const float* post = a.post + t * hc;
  const float* comb = a.comb + t * hc * hc;
  float* out = a.out + t * hc * n;
  for (int64_t k = 0; k < hc; ++k) {
    for (int64_t i = 0; i < n; ++i) {
      float s = post[k] * y[i];
      for (int64_t j = 0; j < hc; ++j) s += comb[j * hc + k] * x[j * n + i];
      out[k * n + i] = s;
    }
  }
}

void hc_split_sinkhorn(const float* mixes, const float* scale, const float* base, int64_t hc,
                       int sinkhorn_iters, float hc_eps, float* pre, float* post, float* comb) {
  auto sigmoid = [](float v) { return 1.0f / (1.0f + std::exp(-v)); };
  for (int64_t j = 0; j < hc; ++j) {
    pre[j] = sigmoid(mixes[j] * scale[0] + base[j]) + hc_eps;
    post[j] = 2.0f * sigmoid(mixes[hc + j] * scale[1] + base[hc + j]);
  }
  for (int64_t j = 0; j < hc; ++j) {  // row j: softmax over k, then + eps
    float* row = comb + j * hc;
    for (int64_t k = 0; k < hc; ++k)
      row[k] = mixes[2 * hc + j * hc + k] * scale[2] + base[2 * hc + j * hc + k];
    softmax(row, hc);
    for (int64_t k = 0; k < hc; ++k) row[k] += hc_eps;
  }
  auto normalize_cols = [&] {
    for (int64_t k = 0; k < hc; ++k) {
      float s = 0.0f;
      for (int64_t j = 0; j < hc; ++j) s += comb[j * hc + k];
      for (int64_t j = 0; j < hc; ++j) comb[j * hc + k] /= (s + hc_eps);
    }
  };
  auto normalize_rows = [&] {
    for (int64_t j = 0; j < hc; ++j) {
      float s = 0.0f;
      for (int64_t k = 0; k < hc; ++k) s += comb[j * hc + k];
      for (int64_t k = 0; k < hc; ++k) comb[j * hc + k] /= (s + hc_eps);
    }
  };
  normalize_cols();
  for (int it = 1; it < sinkhorn_iters; ++it) {
    normalize_rows();
    normalize_cols();
  }
}

void top_k(const float* x, int64_t n, int64_t k, int32_t* idx, float* val) {
  int64_t have = 0;
  for (int64_t i = 0; i < n; ++i) {
    // Position of x[i] among the kept ones: after every kept value >= x[i] (earlier index wins).
    int64_t pos = have;
    while (pos > 0 && x[idx[pos - 1]] < x[i]) --pos;
    if (pos >= k) continue;
    const int64_t last = std::min(have, k - 1);
    for (int64_t j = last; j > pos; --j) idx[j] = idx[j - 1];
    idx[pos] = static_cast<int32_t>(i);
    have = std::min(have + 1, k);
  }
  if (val != nullptr) {
    for (int64_t j = 0; j < k; ++j) val[j] = x[idx[j]];
  }
}

}  // namespace frugal::kernels::ref

namespace frugal::kernels {

namespace {

// Twelve chains of scalar FMAs (std::fma would be a libm call without FMA flags, so a multiply
// and an add: what portable code gets).
uint64_t fma_peak(int64_t iters) {
  float acc[12];
  for (float& a : acc) a = 1.0f;
  const float m = 0.999999f, c = 1e-7f;
  for (int64_t i = 0; i < iters; ++i) {
    for (float& a : acc) a = a * m + c;
  }
  float s = 0.0f;
  for (float a : acc) s += a;
  volatile float sink = s;
  (void)sink;
  return static_cast<uint64_t>(iters) * 12 * 2;
}

uint64_t read_stream(const uint64_t* p, int64_t n_words) {
  const int64_t q = n_words / 4;
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (int64_t i = 0; i < q; ++i) {
    a0 |= p[i];
    a1 |= p[q + i];
    a2 |= p[2 * q + i];
    a3 |= p[3 * q + i];
  }
  return a0 | a1 | a2 | a3;
}

}  // namespace

void install_ref(OpTable* t) {
  for (auto& fn : t->matmul) fn = ref::matmul;
  t->rms_norm = ref::rms_norm;
  t->rope = ref::rope;
  t->softmax = ref::softmax;
  t->attention = ref::attention;
  t->swiglu = ref::swiglu;
  t->fp8_round = ref::fp8_round;
  t->sum_squares = ref::sum_squares;
  t->weighted_sum = ref::weighted_sum;
  t->hc_post = ref::hc_post;
  t->fma_peak = fma_peak;
  t->read_stream = read_stream;
}

}  // namespace frugal::kernels
