// Argument structs of the ops that take more than a handful of inputs (architecture doc §2.3,
// §2.6). Plain data only: the per-ISA kernel files read them too (see quant/weight_view.h for why
// nothing here may have inline code). Shapes are outermost first; all activations are f32.
#pragma once

#include <cstdint>

#include "quant/weight_view.h"

namespace frugal::kernels {

enum class RopeDirection : uint8_t {
  kForward,  // x * e^{i t f}
  kInverse,  // x * e^{-i t f}: de-rotation of the attention output (§2.3)
};

// Attention of m queries over a shared set of cache entries, with the sink logit in the
// denominator only (reference `sparse_attn`, doc §2.3). Per query t and head h:
//   s_i = (q[t,h] . kv[idx[t,i]]) * scale           for idx[t,i] != -1
//   mx  = max_i s_i                                  (real entries only; the sink is not in it)
//   out[t,h] = sum_i e^{s_i - mx} kv[idx[t,i]] / (sum_i e^{s_i - mx} + e^{sink[h] - mx})
// The same vector is key and value (MQA). A query without any real entry gets zeros.
struct AttentionArgs {
  const float* q = nullptr;      // [m, n_heads, head_dim]
  const float* kv = nullptr;     // [n_kv, head_dim]
  const int32_t* idx = nullptr;  // [m, n_idx]; entries in [0, n_kv) or -1
  const float* sink = nullptr;   // [n_heads] (attn_sink)
  float* out = nullptr;          // [m, n_heads, head_dim]
  int64_t m = 1;
  int64_t n_heads = 0;
  int64_t head_dim = 0;
  int64_t n_kv = 0;
  int64_t n_idx = 0;
  float scale = 0.0f;  // softmax_scale (512^-0.5 in V4)
};

// Hyper-connection pre-mix (reference `Block.hc_pre` + `hc_split_sinkhorn`, doc §2.6), per token:
//   xf = x[t] flattened [hc_mult * dim];  r = rsqrt(mean(xf^2) + norm_eps)
//   mixes = (fn xf) * r                                          [(2 + hc) * hc]
//   pre[j]  = sigmoid(mixes[j] * scale[0] + base[j]) + hc_eps
//   post[j] = 2 sigmoid(mixes[hc + j] * scale[1] + base[hc + j])
//   comb[j][k] = mixes[2hc + hc j + k] * scale[2] + base[2hc + hc j + k];
//   comb = softmax over k + hc_eps; comb /= (column sums + hc_eps);
//   (sinkhorn_iters - 1) times: comb /= (row sums + hc_eps); comb /= (column sums + hc_eps)
//   h[t] = sum_j pre[j] x[t, j]
struct HcPreArgs {
  const float* x = nullptr;      // [m, hc_mult, dim] residual streams
  quant::WeightView fn;          // f32 [(2 + hc_mult) * hc_mult, hc_mult * dim] (hc_*_fn)
  const float* base = nullptr;   // [(2 + hc_mult) * hc_mult] (hc_*_base)
  const float* scale = nullptr;  // [3] (hc_*_scale)
  float* mixes = nullptr;        // scratch [m, (2 + hc_mult) * hc_mult]
  float* h = nullptr;            // out [m, dim]
  float* post = nullptr;         // out [m, hc_mult]
  float* comb = nullptr;         // out [m, hc_mult, hc_mult]; comb[j][k] mixes stream j into k
  int64_t m = 1;
  int64_t hc_mult = 4;
  int64_t dim = 0;
  float norm_eps = 1e-6f;
  float hc_eps = 1e-6f;
  int sinkhorn_iters = 20;
};

// Final-head pre-mix (reference `ParallelHead.hc_head`): mixes = (fn xf) * r  [hc],
// pre = sigmoid(mixes * scale[0] + base) + hc_eps, h = sum_j pre[j] x[j]. No post, no Sinkhorn.
struct HcHeadArgs {
  const float* x = nullptr;      // [m, hc_mult, dim]
  quant::WeightView fn;          // f32 [hc_mult, hc_mult * dim] (hc_head_fn)
  const float* base = nullptr;   // [hc_mult]
  const float* scale = nullptr;  // [1]
  float* mixes = nullptr;        // scratch [m, hc_mult]
  float* h = nullptr;            // out [m, dim]
  int64_t m = 1;
  int64_t hc_mult = 4;
  int64_t dim = 0;
  float norm_eps = 1e-6f;
  float hc_eps = 1e-6f;
};

// Hyper-connection post-mix (reference `Block.hc_post`):
//   out[t, k] = post[t, k] * y[t] + sum_j comb[t, j, k] * x[t, j]
// `out` must not overlap `x`.
struct HcPostArgs {
  const float* y = nullptr;     // [m, dim] sub-layer output
  const float* x = nullptr;     // [m, hc_mult, dim] residual streams
  const float* post = nullptr;  // [m, hc_mult]
  const float* comb = nullptr;  // [m, hc_mult, hc_mult]
  float* out = nullptr;         // [m, hc_mult, dim]
  int64_t m = 1;
  int64_t hc_mult = 4;
  int64_t dim = 0;
};

}  // namespace frugal::kernels
