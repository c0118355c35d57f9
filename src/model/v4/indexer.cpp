// The V4 lightning indexer (doc §2.5; reference Indexer.forward): FP4-simulated, Hadamard-rotated
// queries scored against the indexer's compressed keys; the top-k entries feed the attention.
#include <algorithm>
#include <cmath>

#include "kernels/ref/v4_ops.h"
#include "model/v4/layers.h"
#include "quant/act_quant.h"

namespace frugal::v4 {

namespace v4ref = kernels::v4ref;

// mirrors the first half of Indexer.forward: q, the compressor update and the head weights.
void indexer_prepare(const Ctx& ctx, int32_t block, const float* x, const float* qr, int64_t pos0,
                     int64_t n) {
  const DeepSeekV4Config& c = ctx.w.config;
  const IndexerWeights& ix = ctx.w.blocks[static_cast<size_t>(block)].attn.indexer;
  Scratch& s = ctx.s;
  const int64_t nh = c.index_n_heads;
  const int64_t di = c.index_head_dim;
  const int64_t rd = c.rope_head_dim;
  linear(ctx, ix.wq_b, n, qr, s.iq);  // [n, nh, di]
  for (int64_t i = 0; i < n; ++i) {
    float* qi = s.iq + i * nh * di;  // [nh, di]
    ctx.rope[static_cast<size_t>(block)].cos_sin(pos0 + i, s.cos, s.sin);
    ctx.k.rope(qi, nh, di, rd, s.cos, s.sin, kernels::RopeDirection::kForward);  // last rd dims
    for (int64_t h = 0; h < nh; ++h) v4ref::hadamard(qi + h * di, di);  // rotate_activation
    quant::fp4_simulate(qi, nh * di, 32);  // fp4_act_quant(q, 32, True): blocks stay in a head
  }
  compressor_forward(ctx, block, CompressorSlot::kIndexer, ix.compressor, x, pos0, n);
  ctx.k.matmul(ix.weights_proj, n, x, s.iw);  // [n, nh]
  const float scale = 1.0f / std::sqrt(static_cast<float>(di)) / std::sqrt(static_cast<float>(nh));
  for (int64_t e = 0; e < n * nh; ++e) s.iw[e] *= scale;  // softmax_scale * n_heads^-0.5
}

// Scores I(t, j) = sum_h w_h relu(q_h . K_j) over j < (t+1)/4 for the g queries at rows i0 ..
// i0 + g - 1 of the chunk (tokens pos0 + i0 ..) into row i - i0 of s.iscores. The keys are scored
// a tile at a time with one matmul per tile for all g queries (the keys as a [tile, di] weight
// in the cache's format, MXFP4 for the compact cache; the g * nh query heads as its tokens), so a
// tile is copied out of the cache once per g queries. At V4-Flash's 64 x 128 heads that is
// 8,192 multiply-adds per query and entry, the largest per-token cost of a long context. A
// query's dot products do not depend on the other queries of the matmul (each token's sums run
// in the same order), so its scores equal those of a query scored alone.
void indexer_score(const Ctx& ctx, int32_t block, int64_t i0, int64_t g, int64_t pos0) {
  const DeepSeekV4Config& c = ctx.w.config;
  Scratch& s = ctx.s;
  const int64_t nh = c.index_n_heads;
  const int64_t di = c.index_head_dim;
  const int64_t n_keys = (pos0 + i0 + g) / 4;  // the last query's valid entries, the most
  const float* q = s.iq + i0 * nh * di;        // [g, nh, di]
  for (int64_t j0 = 0; j0 < n_keys; j0 += s.index_tile) {
    const int64_t nt = std::min<int64_t>(s.index_tile, n_keys - j0);
    const quant::WeightView keys =
        ctx.cache.load_index_keys(block, j0, nt, reinterpret_cast<std::byte*>(s.ikeys));
    ctx.k.matmul(keys, g * nh, q, di, s.idots, nt);  // [g, nh, nt] q_h . K_j
    for (int64_t k = 0; k < g; ++k) {
      const int64_t n_valid = (pos0 + i0 + k + 1) / 4;
      if (n_valid <= j0) continue;
      const int64_t m = std::min(nt, n_valid - j0);
      const float* w = s.iw + (i0 + k) * nh;                 // [nh]
      float* score = s.iscores + k * s.iscores_stride + j0;  // heads summed in order, as the
      std::fill(score, score + m, 0.0f);                     // reference
      for (int64_t h = 0; h < nh; ++h) {
        const float wh = w[h];
        const float* dot = s.idots + (k * nh + h) * nt;
        for (int64_t j = 0; j < m; ++j) score[j] += wh * std::max(dot[j], 0.0f);
      }
    }
  }
}

// The top min(index_topk, (t+1)/4) entries of row k of s.iscores (token t), best first, into
// out; returns their count.
int32_t indexer_select(const Ctx& ctx, int64_t k, int64_t t, int32_t* out) {
  const int64_t n_valid = (t + 1) / 4;
  const int32_t kk = static_cast<int32_t>(std::min<int64_t>(ctx.w.config.index_topk, n_valid));
  if (kk == 0) return 0;
  ctx.k.top_k(ctx.s.iscores + k * ctx.s.iscores_stride, n_valid, kk, out, nullptr);
  return kk;
}

}  // namespace frugal::v4
