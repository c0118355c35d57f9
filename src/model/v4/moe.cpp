// The V4 MoE layer (doc §2.7; reference Gate.forward, Expert.forward, MoE.forward): hash routing
// by token id on the first n_hash_layers blocks, score + bias top-k after; routing weights from
// the unbiased scores, applied before w2; clamped SwiGLU; the shared expert added last.
#include <algorithm>
#include <cmath>

#include "kernels/ref/v4_ops.h"
#include "model/v4/layers.h"

namespace frugal::v4 {
namespace {

namespace v4ref = kernels::v4ref;

// mirrors Gate.forward for one token: s.esel [topk] expert ids, weights [topk].
void route(const Ctx& ctx, int32_t block, const float* x, int32_t token, float* weights) {
  const DeepSeekV4Config& c = ctx.w.config;
  const MoeWeights& m = ctx.w.blocks[static_cast<size_t>(block)].ffn;
  Scratch& s = ctx.s;
  const int32_t n_exp = static_cast<int32_t>(c.n_routed_experts);
  const int32_t topk = static_cast<int32_t>(c.n_activated_experts);
  ctx.k.matmul(m.gate, 1, x, s.gate);  // [E] fp32 scores
  switch (c.score_func) {
    case ScoreFunc::kSoftmax:
      ctx.k.softmax(s.gate, 1, n_exp);
      break;
    case ScoreFunc::kSigmoid:
      for (int32_t e = 0; e < n_exp; ++e) s.gate[e] = v4ref::sigmoid(s.gate[e]);
      break;
    case ScoreFunc::kSqrtSoftplus:
      for (int32_t e = 0; e < n_exp; ++e) s.gate[e] = std::sqrt(v4ref::softplus(s.gate[e]));
      break;
  }
  if (m.tid2eid != nullptr) {  // hash layer: indices = tid2eid[input_ids]
    std::copy_n(m.tid2eid + static_cast<int64_t>(token) * topk, topk, s.esel);
  } else {  // scores + bias select; the bias never enters the weights
    for (int32_t e = 0; e < n_exp; ++e) s.biased[e] = s.gate[e] + m.bias[e];
    ctx.k.top_k(s.biased, n_exp, topk, s.esel, nullptr);
  }
  float sum = 0.0f;
  for (int32_t j = 0; j < topk; ++j) sum += weights[j] = s.gate[s.esel[j]];
  const bool renorm = c.score_func != ScoreFunc::kSoftmax;  // weights /= weights.sum()
  for (int32_t j = 0; j < topk; ++j) {
    if (renorm) weights[j] /= sum;
    weights[j] *= static_cast<float>(c.route_scale);
  }
}

// mirrors Expert.forward: out += w2(weight * swiglu(w1 x, w3 x)).
void expert(const Ctx& ctx, const ExpertWeights& e, const float* x, float limit, float weight,
            float* out) {
  const DeepSeekV4Config& c = ctx.w.config;
  Scratch& s = ctx.s;
  ctx.k.matmul(e.w1, 1, x, s.eg);                                  // [inter] gate
  ctx.k.matmul(e.w3, 1, x, s.eu);                                  // [inter] up
  ctx.k.swiglu(s.eg, s.eu, c.moe_inter_dim, limit, weight, s.eg);  // [inter], weight before w2
  ctx.k.matmul(e.w2, 1, s.eg, s.eo);                               // [dim]
  for (int64_t d = 0; d < c.dim; ++d) out[d] += s.eo[d];
}

}  // namespace

// mirrors MoE.forward: x [n, dim] (ffn_norm output), ids [n] -> out [n, dim].
void moe_forward(const Ctx& ctx, int32_t block, const float* x, const int32_t* ids, int64_t n,
                 float* out) {
  const DeepSeekV4Config& c = ctx.w.config;
  const MoeWeights& m = ctx.w.blocks[static_cast<size_t>(block)].ffn;
  Scratch& s = ctx.s;
  const int32_t topk = static_cast<int32_t>(c.n_activated_experts);  // <= 64 (checked at load)
  const float limit = static_cast<float>(c.swiglu_limit);
  float weights[64];
  int32_t order[64];
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * c.dim;
    float* yi = out + i * c.dim;
    std::fill(yi, yi + c.dim, 0.0f);
    route(ctx, block, xi, ids[i], weights);
    // The reference adds the experts in expert-id order.
    for (int32_t j = 0; j < topk; ++j) order[j] = j;
    std::sort(order, order + topk, [&](int32_t a, int32_t b) { return s.esel[a] < s.esel[b]; });
    for (int32_t j = 0; j < topk; ++j) {
      const int32_t sel = order[j];
      expert(ctx, m.experts[static_cast<size_t>(s.esel[sel])], xi, limit, weights[sel], yi);
    }
    expert(ctx, m.shared, xi, m.shared_swiglu_limit, 1.0f, yi);  // shared_experts(x)
  }
}

}  // namespace frugal::v4
