// The V4 KV compressor (doc §2.4; reference Compressor.forward). Prefill and decode share the
// decode-state path: each token writes its (kv, score) row into the persistent state and a block
// is pooled when its last token arrives, which is the reference prefill's pooling of the same
// rows. A fresh sequence starts from kv_state = 0, score_state = -inf (doc §2.B).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/ref/v4_ops.h"
#include "model/v4/layers.h"
#include "quant/act_quant.h"

namespace frugal::v4 {
namespace {

namespace v4ref = kernels::v4ref;

// Pools block rows of the state into entry[d]: softmax over the candidate rows of each column.
// Overlap (ratio 4): rows 0..r-1 at column e (previous block, first half of the projections) and
// rows r..2r-1 at column d+e (current block, second half). Else rows 0..r-1 at column e.
void pool(const CompressorState& st, const CompressorWeights& c, float* tmp, float* entry) {
  const int64_t r = c.ratio;
  const int64_t d = c.width;
  const int64_t n_cand = c.overlap ? 2 * r : r;
  for (int64_t e = 0; e < d; ++e) {
    auto col = [&](int64_t cand) { return cand < r || !c.overlap ? e : d + e; };
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t cand = 0; cand < n_cand; ++cand) {
      tmp[cand] = st.score_state[cand * st.cols + col(cand)];
      m = std::max(m, tmp[cand]);
    }
    float sum = 0.0f;
    for (int64_t cand = 0; cand < n_cand; ++cand) {
      tmp[cand] = std::exp(tmp[cand] - m);  // -inf rows (absent previous block) give 0
      sum += tmp[cand];
    }
    float acc = 0.0f;
    for (int64_t cand = 0; cand < n_cand; ++cand) {
      if (tmp[cand] != 0.0f) acc += tmp[cand] / sum * st.kv_state[cand * st.cols + col(cand)];
    }
    entry[e] = acc;
  }
}

// norm, RoPE at the block's first position, then the cache simulation (Compressor.forward tail).
void finish_entry(const Ctx& ctx, int32_t block, const CompressorWeights& c, int64_t pos,
                  float* entry) {
  const DeepSeekV4Config& cfg = ctx.w.config;
  const int64_t d = c.width;
  const int64_t rd = cfg.rope_head_dim;
  ctx.k.rms_norm(entry, c.norm, 1, d, static_cast<float>(cfg.norm_eps), entry);  // [d]
  ctx.rope[static_cast<size_t>(block)].cos_sin(pos, ctx.s.cos, ctx.s.sin);
  ctx.k.rope(entry, 1, d, rd, ctx.s.cos, ctx.s.sin, kernels::RopeDirection::kForward);
  if (c.rotate) {
    v4ref::hadamard(entry, d);          // rotate_activation
    quant::fp4_simulate(entry, d, 32);  // fp4_act_quant(kv, 32, True)
  } else {
    quant::fp8_simulate(entry, d - rd, 64);  // act_quant(kv[..., :-rd], 64, ..., True)
    if (ctx.cache.rope_bf16()) v4ref::round_bf16(entry + d - rd, rd);  // cache-exact (cache.h)
  }
}

}  // namespace

// mirrors Compressor.forward (decode branch), token by token for tokens pos0 .. pos0+n-1.
void compressor_forward(const Ctx& ctx, int32_t block, CompressorSlot slot,
                        const CompressorWeights& c, const float* x, int64_t pos0, int64_t n) {
  Scratch& s = ctx.s;
  const int64_t r = c.ratio;
  const int64_t cols = (c.overlap ? 2 : 1) * c.width;
  ctx.k.matmul(c.wkv, n, x, s.ca);    // [n, c*d] kv
  ctx.k.matmul(c.wgate, n, x, s.cb);  // [n, c*d] score
  CompressorState st = ctx.cache.compressor_state(block, slot);
  FRUGAL_CHECK(st.cols == cols && st.rows == (c.overlap ? 2 : 1) * r);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = pos0 + i;
    const int64_t row = (c.overlap ? r : 0) + t % r;
    ctx.cache.will_write_compressor_rows(block, slot, t, row, 1);
    float* kv_row = st.kv_state + row * cols;
    float* score_row = st.score_state + row * cols;
    const float* ape = c.ape + (t % r) * cols;  // per-position bias
    for (int64_t e = 0; e < cols; ++e) {
      kv_row[e] = s.ca[i * cols + e];
      score_row[e] = s.cb[i * cols + e] + ape[e];
    }
    if ((t + 1) % r != 0) continue;                   // should_compress
    pool(st, c, s.pool, s.entry);                     // [d]
    finish_entry(ctx, block, c, t + 1 - r, s.entry);  // position of the block's first token
    if (slot == CompressorSlot::kMain) {
      ctx.cache.store_compressed(block, t / r, s.entry);
    } else {
      ctx.cache.store_index_key(block, t / r, s.entry);
    }
    if (c.overlap) {  // the current block becomes the previous one
      ctx.cache.will_write_compressor_rows(block, slot, t, 0, r);
      std::memcpy(st.kv_state, st.kv_state + r * cols, r * cols * sizeof(float));
      std::memcpy(st.score_state, st.score_state + r * cols, r * cols * sizeof(float));
    }
  }
}

}  // namespace frugal::v4
