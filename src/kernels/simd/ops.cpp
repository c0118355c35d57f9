// The non-GEMM ops, written once against the target vocabulary (target.h) and compiled per
// target. Each mirrors its scalar oracle in ref/ref_ops.cpp; the differences are summation order,
// FMA contraction and the vocabulary exp's few-ulp error (bounds in tests/kernels/ops_test.cpp).
// Loops run over whole vectors and finish with one first-n vector (load_n / store_n), so no
// element past the end is read or written.
#include "core/convert.h"
#include "kernels/ref/ref.h"
#include "kernels/simd/simd.h"
#include "kernels/simd/target.h"
#include "quant/act_quant.h"

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

namespace {

// The f32 bit patterns of a vector, as GCC vector-extension integers (same size as VF).
typedef int32_t VI __attribute__((vector_size(sizeof(VF))));

// y rounded to the e4m3 grid, ties to even, for finite |y| <= 448: the grid step is
// q = 2^(max(e, -6) - 3) for |y| in [2^e, 2^(e + 1)) (3 mantissa bits; below 2^-6 the subnormal
// step 2^-9), and |y| / q < 16, so adding and subtracting 1.5 * 2^23 rounds |y| / q to an integer
// with the FPU's ties-to-even. Scaling by the powers of two q and 1 / q is exact (a fused
// multiply-add of |y| * (1 / q) + 1.5 * 2^23 rounds the same). The sign is put back as a bit, so
// -0 and values rounding to 0 keep it, as the e4m3 code does.
FRUGAL_SIMD_INLINE VF e4m3_round(VF y) {
  const VI bits = __builtin_bit_cast(VI, y);
  const VI mag = bits & 0x7fffffff, sign = bits & static_cast<int32_t>(0x80000000u);
  const VI e = mag & 0x7f800000, e_min = VI{} + ((127 - 6) << 23);
  const VI qe = (e < e_min ? e_min : e) - (3 << 23);
  const VF q = __builtin_bit_cast(VF, qe), inv_q = __builtin_bit_cast(VF, (254 << 23) - qe);
  const VF magic = set1(0x1.8p23f);
  const VF r = mul(sub(add(mul(__builtin_bit_cast(VF, mag), inv_q), magic), magic), q);
  return __builtin_bit_cast(VF, __builtin_bit_cast(VI, r) | sign);
}

}  // namespace

void fp8_round(const float* x, int64_t n, int64_t block, float* out) {
  const VF lo = set1(-quant::kFp8Max), hi = set1(quant::kFp8Max);
  for (int64_t b = 0; b < n; b += block) {
    const float* xb = x + b;
    float* ob = out + b;
    // The largest |x| as an integer maximum of the magnitude bits (the same order for
    // non-negative floats; inf and NaN patterns are above every finite one).
    VI mmax{};
    for (int64_t i = 0; i < block; i += kLanes) {
      const VI mag = __builtin_bit_cast(VI, load_n(xb + i, block - i)) & 0x7fffffff;
      mmax = mmax > mag ? mmax : mag;
    }
    int32_t amax_bits = 0;
    for (int i = 0; i < kLanes; ++i) amax_bits = amax_bits > mmax[i] ? amax_bits : mmax[i];
    if (amax_bits >= 0x7f800000) {  // inf or NaN: the oracle's own treatment
      ref::fp8_round(xb, block, block, ob);
      continue;
    }
    const float s = e8m0_to_f32(quant::fp8_scale_code(__builtin_bit_cast(float, amax_bits)));
    const VF sv = set1(s), inv = set1(1.0f / s);  // x / s = x * (1 / s): both exact powers of two
    for (int64_t i = 0; i < block; i += kLanes) {
      const VF v = load_n(xb + i, block - i);
      store_n(ob + i, mul(e4m3_round(min(max(mul(v, inv), lo), hi)), sv), block - i);
    }
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

// out[k][i..i+kLanes) = post[k] * y + sum_j comb[j][k] * x[j] for the hc streams, the first nl
// lanes only when kTail. kHc > 0: hc known at compile time, so the hc x vectors are loaded once
// and kept in registers for every output stream (hc + 1 loads per column block instead of
// hc^2 + 1); kHc == 0: any hc, x reloaded per output stream.
template <int kHc, bool kTail>
FRUGAL_SIMD_INLINE void hc_post_vec(const float* y, const float* x, const float* post,
                                    const float* comb, int64_t hc, int64_t n, int64_t i, int64_t nl,
                                    float* out) {
  const auto ld = [nl](const float* p) { return kTail ? load_n(p, nl) : loadu(p); };
  const VF yv = ld(y + i);
  if constexpr (kHc > 0) {
    VF xv[kHc];
    for (int j = 0; j < kHc; ++j) xv[j] = ld(x + j * n + i);
    for (int k = 0; k < kHc; ++k) {
      VF s = mul(set1(post[k]), yv);
      for (int j = 0; j < kHc; ++j) s = fmadd(set1(comb[j * kHc + k]), xv[j], s);
      if constexpr (kTail) {
        store_n(out + k * n + i, s, nl);
      } else {
        storeu(out + k * n + i, s);
      }
    }
  } else {
    for (int64_t k = 0; k < hc; ++k) {
      VF s = mul(set1(post[k]), yv);
      for (int64_t j = 0; j < hc; ++j) s = fmadd(set1(comb[j * hc + k]), ld(x + j * n + i), s);
      if constexpr (kTail) {
        store_n(out + k * n + i, s, nl);
      } else {
        storeu(out + k * n + i, s);
      }
    }
  }
}

// Token t of a: y [n], x [hc, n], post [hc], comb [hc, hc] -> out [hc, n].
template <int kHc>
void hc_post_token(const HcPostArgs& a, int64_t t) {
  const int64_t hc = kHc > 0 ? kHc : a.hc_mult, n = a.dim;
  const float *y = a.y + t * n, *x = a.x + t * hc * n;
  const float *post = a.post + t * hc, *comb = a.comb + t * hc * hc;
  float* out = a.out + t * hc * n;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    hc_post_vec<kHc, false>(y, x, post, comb, hc, n, i, kLanes, out);
  }
  if (i < n) hc_post_vec<kHc, true>(y, x, post, comb, hc, n, i, n - i, out);
}

}  // namespace

void hc_post(const HcPostArgs& a, int64_t t) {
  if (a.hc_mult == 4) {  // V4's hc_mult
    hc_post_token<4>(a, t);
  } else {
    hc_post_token<0>(a, t);
  }
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
