// mHC: manifold-constrained hyper-connections (doc §2.6; reference Block.hc_pre, Block.hc_post,
// ParallelHead.hc_head, kernel.py hc_split_sinkhorn). The math is in the op API (HcPreArgs etc.).
#include <algorithm>
#include <cstring>

#include "model/v4/layers.h"

namespace frugal::v4 {
namespace {

quant::WeightView f32_view(const float* fn, int64_t rows, int64_t cols) {
  return {.format = quant::WeightFormat::kF32, .rows = rows, .cols = cols, .data = fn};
}

}  // namespace

// mirrors Block.hc_pre: x [n, hc, dim] -> h [n, dim]; keeps post [n, hc] and comb [n, hc, hc].
void hc_pre(const Ctx& ctx, const HcWeights& hc, const float* x, int64_t n, float* h) {
  const DeepSeekV4Config& c = ctx.w.config;
  ctx.k.hc_pre({.x = x,
                .fn = f32_view(hc.fn, c.hc_mix(), c.hc_dim()),
                .base = hc.base,
                .scale = hc.scale,
                .mixes = ctx.s.mixes,  // [n, (2+hc)*hc]
                .h = h,                // [n, dim]
                .post = ctx.s.post,    // [n, hc]
                .comb = ctx.s.comb,    // [n, hc, hc]
                .m = n,
                .hc_mult = c.hc_mult,
                .dim = c.dim,
                .norm_eps = static_cast<float>(c.norm_eps),
                .hc_eps = static_cast<float>(c.hc_eps),
                .sinkhorn_iters = static_cast<int>(c.hc_sinkhorn_iters)});
}

// mirrors Block.hc_post: new stream k = post[k] * y + sum_j comb[j, k] * x[j]   (x updated,
// max_chunk rows at a time through s.x_new)
void hc_post(const Ctx& ctx, float* x, const float* y, int64_t n) {
  const DeepSeekV4Config& c = ctx.w.config;
  const Scratch& s = ctx.s;
  const int64_t hc = c.hc_mult, hd = c.hc_dim();
  for (int64_t r0 = 0; r0 < n; r0 += s.max_chunk) {
    const int64_t m = std::min(s.max_chunk, n - r0);
    ctx.k.hc_post({.y = y + r0 * c.dim,  // [m, dim]
                   .x = x + r0 * hd,     // [m, hc, dim]
                   .post = s.post + r0 * hc,
                   .comb = s.comb + r0 * hc * hc,
                   .out = s.x_new,  // [m, hc, dim]
                   .m = m,
                   .hc_mult = hc,
                   .dim = c.dim});
    std::memcpy(x + r0 * hd, s.x_new, static_cast<size_t>(m * hd) * sizeof(float));
  }
}

// mirrors ParallelHead.hc_head: pre = sigmoid(mixes * scale + base) + hc_eps; h = sum_j pre[j] x[j]
void hc_head(const Ctx& ctx, const HcWeights& hc, const float* x, int64_t n, float* h) {
  const DeepSeekV4Config& c = ctx.w.config;
  ctx.k.hc_head({.x = x,  // [n, hc, dim]
                 .fn = f32_view(hc.fn, c.hc_mult, c.hc_dim()),
                 .base = hc.base,
                 .scale = hc.scale,
                 .mixes = ctx.s.mixes,  // [n, hc]
                 .h = h,                // [n, dim]
                 .m = n,
                 .hc_mult = c.hc_mult,
                 .dim = c.dim,
                 .norm_eps = static_cast<float>(c.norm_eps),
                 .hc_eps = static_cast<float>(c.hc_eps)});
}

}  // namespace frugal::v4
