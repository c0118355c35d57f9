// The V4 MTP block (doc §2.8; reference MTPBlock.forward): the main model's last streams at
// position t and the embedding of token t+1 go through one more full block (window-only
// attention with its own cache, MoE) to predict token t+2.
#include "model/v4/layers.h"

namespace frugal::v4 {

// mirrors MTPBlock.forward: x = e_proj(enorm(embed(next))) + h_proj(hnorm(x_main)), then Block.
Status mtp_forward(const Ctx& ctx, int32_t block, float* x_main, const int32_t* next_ids,
                   int64_t pos0, int64_t n) {
  const DeepSeekV4Config& c = ctx.w.config;
  const MtpWeights& m = ctx.w.blocks[static_cast<size_t>(block)].mtp;
  Scratch& s = ctx.s;
  const float eps = static_cast<float>(c.norm_eps);
  const int64_t d = c.dim;
  const int64_t hc = c.hc_mult;
  FRUGAL_RETURN_IF_ERROR(embed_lookup(ctx, next_ids, n, s.h));  // [n, d] embed(next)
  ctx.k.rms_norm(s.h, m.enorm, n, d, eps, s.h);             // e = enorm(embed(next))
  linear(ctx, m.e_proj, n, s.h, s.ee);                      // [n, d] e_proj(e)
  ctx.k.rms_norm(x_main, m.hnorm, n * hc, d, eps, x_main);  // [n, hc, d] hnorm per stream
  linear(ctx, m.h_proj, n * hc, x_main, s.x_mtp);           // [n, hc, d] h_proj
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < hc; ++j) {
      float* xs = s.x_mtp + (i * hc + j) * d;
      for (int64_t e = 0; e < d; ++e) xs[e] += s.ee[i * d + e];  // e_proj(e).unsqueeze(2) + ...
    }
  }
  const Segment seg[1] = {{.cache = &ctx.cache, .row0 = 0, .n = n, .pos0 = pos0}};
  return block_forward(ctx, block, s.x_mtp, next_ids, seg);  // super().forward(x, start_pos, ids)
}

}  // namespace frugal::v4
