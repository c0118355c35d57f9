// The non-GEMM ops, written once against the target vocabulary (target.h) and compiled per
// target. Each mirrors its scalar oracle in ref/ref_ops.cpp; the differences are summation order,
// FMA contraction and the vocabulary exp's few-ulp error (bounds in tests/kernels/ops_test.cpp).
// Loops run over whole vectors and finish with one first-n vector (load_n / store_n), so no
// element past the end is read or written.
#include "kernels/ref/ref.h"
#include "kernels/simd/simd.h"
#include "kernels/simd/target.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {
namespace {

constexpr float kNegInf = -__builtin_inff();
// rope keeps cos / sin of one position spread to pairs on the stack; V4's rope_dim is 64.
constexpr int64_t kMaxRopeDim = 1024;

// out = (w ? w : 1) * x * r for n elements.
template <bool kWeighted>
FRUGAL_SIMD_INLINE void scale_row(const float* x, const float* w, int64_t n, float r, float* out) {
  const VF rv = set1(r);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    VF v = mul(loadu(x + i), rv);
    if constexpr (kWeighted) v = mul(loadu(w + i), v);
    storeu(out + i, v);
  }
  if (i < n) {
    VF v = mul(load_n(x + i, n - i), rv);
    if constexpr (kWeighted) v = mul(load_n(w + i, n - i), v);
    store_n(out + i, v, n - i);
  }
}

}  // namespace

float sum_squares(const float* x, int64_t n) {
  VF a0 = zero(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    const VF v0 = loadu(x + i), v1 = loadu(x + i + kLanes);
    const VF v2 = loadu(x + i + 2 * kLanes), v3 = loadu(x + i + 3 * kLanes);
    a0 = fmadd(v0, v0, a0);
    a1 = fmadd(v1, v1, a1);
    a2 = fmadd(v2, v2, a2);
    a3 = fmadd(v3, v3, a3);
  }
  for (; i < n; i += kLanes) {
    const VF v = load_n(x + i, n - i);
    a0 = fmadd(v, v, a0);
  }
  return hsum(add(add(a0, a1), add(a2, a3)));
}

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  const float r = 1.0f / __builtin_sqrtf(sum_squares(x, n) / static_cast<float>(n) + eps);
  if (w != nullptr) {
    scale_row<true>(x, w, n, r, out);
  } else {
    scale_row<false>(x, nullptr, n, r, out);
  }
}

// Pairs (2i, 2i+1) of the last rope_dim dims: (a, b) -> (a c - b s, a s + b c), s negated for the
// inverse. cos / sin are spread once to both lanes of each pair, with the sign of s per lane
// folded in, so each vector is out = a * c2 + swap_pairs(a) * s2.
void rope(float* x, int64_t n_vec, int64_t dim, int64_t rope_dim, const float* cos,
          const float* sin, RopeDirection dir) {
  if (rope_dim > kMaxRopeDim) {
    ref::rope(x, n_vec, dim, rope_dim, cos, sin, dir);
    return;
  }
  alignas(64) float c2[kMaxRopeDim], s2[kMaxRopeDim];
  const float se = dir == RopeDirection::kInverse ? 1.0f : -1.0f;  // sign of s in even lanes
  for (int64_t i = 0; i < rope_dim / 2; ++i) {
    c2[2 * i] = c2[2 * i + 1] = cos[i];
    s2[2 * i] = se * sin[i];
    s2[2 * i + 1] = -se * sin[i];
  }
  for (int64_t v = 0; v < n_vec; ++v) {
    float* p = x + v * dim + (dim - rope_dim);
    int64_t i = 0;
    for (; i + kLanes <= rope_dim; i += kLanes) {
      const VF a = loadu(p + i);
      storeu(p + i, fmadd(swap_pairs(a), load(s2 + i), mul(a, load(c2 + i))));
    }
    if (i < rope_dim) {  // whole pairs: rope_dim and kLanes are even
      const int64_t r = rope_dim - i;
      const VF a = load_n(p + i, r);
      store_n(p + i, fmadd(swap_pairs(a), load_n(s2 + i, r), mul(a, load_n(c2 + i, r))), r);
    }
  }
}

void softmax(float* x, int64_t n) {
  VF mx = set1(kNegInf);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) mx = max(mx, loadu(x + i));
  float m = hmax(mx);
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  const VF mv = set1(m);
  VF sum = zero();
  for (i = 0; i + kLanes <= n; i += kLanes) {
    const VF e = exp(sub(loadu(x + i), mv));
    sum = add(sum, e);
    storeu(x + i, e);
  }
  if (i < n) {
    const VF e = keep_n(exp(sub(load_n(x + i, n - i), mv)), n - i);
    sum = add(sum, e);
    store_n(x + i, e, n - i);
  }
  const VF s = set1(hsum(sum));
  for (i = 0; i + kLanes <= n; i += kLanes) storeu(x + i, div(loadu(x + i), s));
  if (i < n) store_n(x + i, div(load_n(x + i, n - i), s), n - i);
}

namespace {

// scale * silu(g) * u with the optional clamp. e^-g overflows for g below about -88.7; where the
// vocabulary's exp clamps its argument instead of returning inf, silu is taken as -0 there
// explicitly (the oracle's g / inf).
template <bool kClamp>
FRUGAL_SIMD_INLINE VF swiglu_vec(VF g, VF u, VF lim, VF neg, VF sc) {
  if constexpr (kClamp) {
    g = min(g, lim);
    u = max(min(u, lim), neg);
  }
  const VF silu = div(g, add(set1(1.0f), exp(sub(zero(), g))));
  return mul(sc, mul(select_lt(g, set1(-88.3f), set1(-0.0f), silu), u));
}

template <bool kClamp>
void swiglu_row(const float* gate, const float* up, int64_t n, float limit, float scale,
                float* out) {
  const VF lim = set1(limit), neg = set1(-limit), sc = set1(scale);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    storeu(out + i, swiglu_vec<kClamp>(loadu(gate + i), loadu(up + i), lim, neg, sc));
  }
  if (i < n) {
    const VF v = swiglu_vec<kClamp>(load_n(gate + i, n - i), load_n(up + i, n - i), lim, neg, sc);
    store_n(out + i, v, n - i);
  }
}

}  // namespace

void swiglu(const float* gate, const float* up, int64_t n, float limit, float scale, float* out) {
  if (limit > 0.0f) {
    swiglu_row<true>(gate, up, n, limit, scale, out);
  } else {
    swiglu_row<false>(gate, up, n, limit, scale, out);
  }
}

void weighted_sum(const float* x, const float* c, int64_t k, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    VF s = zero();
    for (int64_t j = 0; j < k; ++j) s = fmadd(set1(c[j]), loadu(x + j * n + i), s);
    storeu(out + i, s);
  }
  if (i < n) {
    VF s = zero();
    for (int64_t j = 0; j < k; ++j) s = fmadd(set1(c[j]), load_n(x + j * n + i, n - i), s);
    store_n(out + i, s, n - i);
  }
}

namespace {

// out[k][i..i+kLanes) = post[k] * y + sum_j comb[j][k] * x[j] for the hc streams; the first nl
// lanes only when Tail.
template <bool kTail>
FRUGAL_SIMD_INLINE void hc_post_vec(const float* y, const float* x, const float* post,
                                    const float* comb, int64_t hc, int64_t n, int64_t i, int64_t nl,
                                    float* out) {
  const VF yv = kTail ? load_n(y + i, nl) : loadu(y + i);
  for (int64_t k = 0; k < hc; ++k) {
    VF s = mul(set1(post[k]), yv);
    for (int64_t j = 0; j < hc; ++j) {
      const VF xv = kTail ? load_n(x + j * n + i, nl) : loadu(x + j * n + i);
      s = fmadd(set1(comb[j * hc + k]), xv, s);
    }
    if constexpr (kTail) {
      store_n(out + k * n + i, s, nl);
    } else {
      storeu(out + k * n + i, s);
    }
  }
}

}  // namespace

void hc_post(const HcPostArgs& a, int64_t t) {
  const int64_t hc = a.hc_mult, n = a.dim;
  const float* y = a.y + t * n;
  const float* x = a.x + t * hc * n;
  const float* post = a.post + t * hc;
  const float* comb = a.comb + t * hc * hc;
  float* out = a.out + t * hc * n;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) hc_post_vec<false>(y, x, post, comb, hc, n, i, kLanes, out);
  if (i < n) hc_post_vec<true>(y, x, post, comb, hc, n, i, n - i, out);
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
