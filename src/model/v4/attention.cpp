// The V4 attention layer (doc §2.3; reference Attention.forward): q-LoRA with q_norm, a weightless
// per-head RMS norm, RoPE on the last rope_head_dim dims, one shared KV vector per token (FP8-
// simulated NoPE dims), the sliding window plus compressed entries (all of them for HCA, the
// indexer's top-k for CSA), the attention sink, de-rotation and the grouped low-rank output.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/ref/v4_ops.h"
#include "model/v4/layers.h"
#include "quant/act_quant.h"

namespace frugal::v4 {
namespace {

namespace v4ref = kernels::v4ref;

// q [n, H, hd] and kv [n, hd] of all rows (Attention.forward "q" and "win kv" parts), each row
// rotated at its own position.
void project_q_kv(const Ctx& ctx, int32_t block, const float* x, std::span<const Segment> segs,
                  int64_t n) {
  const DeepSeekV4Config& c = ctx.w.config;
  const AttentionWeights& a = ctx.w.blocks[static_cast<size_t>(block)].attn;
  Scratch& s = ctx.s;
  const kernels::Kernels& k = ctx.k;
  const int64_t hd = c.head_dim;
  const int64_t rd = c.rope_head_dim;
  const int64_t nope = c.nope_head_dim();
  const float eps = static_cast<float>(c.norm_eps);
  linear(ctx, a.wq_a, n, x, s.cq);                          // [n, q_lora_rank]
  k.rms_norm(s.cq, a.q_norm, n, c.q_lora_rank, eps, s.cq);  // qr = q_norm(wq_a x)
  linear(ctx, a.wq_b, n, s.cq, s.q);                        // [n, H, hd]
  k.rms_norm(s.q, n * c.n_heads, hd, eps, s.q);             // per head, no weight
  linear(ctx, a.wkv, n, x, s.kv);                           // [n, hd]
  k.rms_norm(s.kv, a.kv_norm, n, hd, eps, s.kv);            // kv_norm
  const RopeTable& rope = ctx.rope[static_cast<size_t>(block)];
  for (const Segment& seg : segs) {
    for (int64_t i = seg.row0; i < seg.row0 + seg.n; ++i) {
      rope.cos_sin(seg.pos0 + i - seg.row0, s.cos, s.sin);
      k.rope(s.q + i * c.n_heads * hd, c.n_heads, hd, rd, s.cos, s.sin,
             kernels::RopeDirection::kForward);  // last rd dims of every head
      float* kv = s.kv + i * hd;
      k.rope(kv, 1, hd, rd, s.cos, s.sin, kernels::RopeDirection::kForward);
      quant::fp8_simulate(kv, nope, 64);  // "FP8-simulate non-rope dims to match QAT"
      if (seg.cache->rope_bf16()) v4ref::round_bf16(kv + nope, rd);  // cache-exact (cache.h)
    }
  }
}

// The entries the chunk's queries attend to, in s.kvpool [rows, hd], and each query's indices into
// it in s.aidx [n, n_idx] (-1 past its own entries). Rows: the window positions before the chunk
// (from the ring), the chunk's own kv, then the compressed entries: HCA all completed blocks,
// CSA the entries the indexer picked, each decoded once however many queries pick it. A query's
// indices list its window positions oldest first, then its compressed entries (HCA in block
// order, CSA best first): the order the reference's index list has, so the attention sums in
// the same order as for one query alone.
struct KvPool {
  int64_t wbase = 0;  // position of row 0
  int64_t cbase = 0;  // row of the first compressed entry
  int64_t rows = 0;   // rows in use
  int64_t n_idx = 0;  // indices per query
  int64_t csa = 0;    // CSA entries in the pool (s.csel)
};

// Writes the window part of query t's indices (positions max(0, t-W+1) .. t); returns the count.
int64_t window_indices(const DeepSeekV4Config& c, const KvPool& p, int64_t t, int32_t* idx) {
  int64_t n = 0;
  for (int64_t q = std::max<int64_t>(0, t - c.window_size + 1); q <= t; ++q, ++n) {
    idx[n] = static_cast<int32_t>(q - p.wbase);
  }
  return n;
}

// The window rows (ring positions before pos0, then the chunk's kv rows) and, for HCA, every
// compressed entry the chunk can see.
KvPool fill_pool(const Ctx& ctx, int32_t block, const float* seg_kv, int64_t pos0, int64_t n) {
  const DeepSeekV4Config& c = ctx.w.config;
  Scratch& s = ctx.s;
  const int64_t hd = c.head_dim;
  const int64_t ratio = c.compress_ratio(block);
  KvPool p;
  p.wbase = std::max<int64_t>(0, pos0 - c.window_size + 1);
  for (int64_t q = p.wbase; q < pos0; ++q)
    ctx.cache.load_window(block, q, s.kvpool + (q - p.wbase) * hd);
  std::memcpy(s.kvpool + (pos0 - p.wbase) * hd, seg_kv, n * hd * sizeof(float));
  p.cbase = pos0 - p.wbase + n;
  p.rows = p.cbase;
  const int64_t last = pos0 + n - 1;  // the chunk's last query sees the most entries
  p.n_idx = std::min<int64_t>(c.window_size, last + 1);
  if (ratio == 4) {
    p.n_idx += std::min<int64_t>(c.index_topk, (last + 1) / 4);
  } else if (ratio > 4) {  // HCA: get_compress_topk_idxs, every completed block
    const int64_t nc = (last + 1) / ratio;
    for (int64_t j = 0; j < nc; ++j)
      ctx.cache.load_compressed(block, j, s.kvpool + (p.cbase + j) * hd);
    p.rows += nc;
    p.n_idx += nc;
  }
  FRUGAL_CHECK(p.rows <= s.kvpool_rows && p.n_idx <= s.max_candidates);
  return p;
}

// Attention of the segment's queries [q0, q1) over the pool (sparse_attn), then the de-rotation
// of their outputs with each query's position.
void attend(const Ctx& ctx, int32_t block, const Segment& seg, const KvPool& p, int64_t q0,
            int64_t q1) {
  if (q1 <= q0) return;
  const DeepSeekV4Config& c = ctx.w.config;
  const AttentionWeights& a = ctx.w.blocks[static_cast<size_t>(block)].attn;
  Scratch& s = ctx.s;
  const int64_t hd = c.head_dim;
  const int64_t qd = c.n_heads * hd;
  float* o = s.o + (seg.row0 + q0) * qd;  // [q1 - q0, H, hd]
  ctx.k.attention({.q = s.q + (seg.row0 + q0) * qd,
                   .kv = s.kvpool,
                   .idx = s.aidx + q0 * p.n_idx,
                   .sink = a.attn_sink,
                   .out = o,
                   .m = q1 - q0,
                   .n_heads = c.n_heads,
                   .head_dim = hd,
                   .n_kv = p.rows,
                   .n_idx = p.n_idx,
                   .scale = 1.0f / std::sqrt(static_cast<float>(hd))});  // sparse_attn
  const RopeTable& rope = ctx.rope[static_cast<size_t>(block)];
  for (int64_t i = q0; i < q1; ++i) {
    rope.cos_sin(seg.pos0 + i, s.cos, s.sin);
    ctx.k.rope(o + (i - q0) * qd, c.n_heads, hd, c.rope_head_dim, s.cos, s.sin,
               kernels::RopeDirection::kInverse);  // de-rotation with the query position
  }
}

// The attention of one segment (ctx.cache is its cache): every query's indices, then one
// attention call for all of them. CSA: the indexer scores index_group queries at a time; a
// query's picks go into the pool, and when the pool has no room for another query's the queries
// so far attend first and the pool's CSA rows start over.
void segment_attention(const Ctx& ctx, int32_t block, const Segment& seg, const float* seg_kv) {
  const DeepSeekV4Config& c = ctx.w.config;
  Scratch& s = ctx.s;
  const int64_t hd = c.head_dim;
  const int64_t pos0 = seg.pos0, n = seg.n;
  const int64_t ratio = c.compress_ratio(block);
  KvPool p = fill_pool(ctx, block, seg_kv, pos0, n);
  int64_t q0 = 0;  // first query not yet attended
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = pos0 + i;
    int32_t* idx = s.aidx + i * p.n_idx;
    int64_t k = window_indices(c, p, t, idx);
    if (ratio == 4) {  // get_compress_topk_idxs replaced by the indexer's choice
      if (i % s.index_group == 0)
        indexer_score(ctx, block, i, std::min(s.index_group, n - i), pos0);
      const int32_t kk = indexer_select(ctx, i % s.index_group, t, s.isel);
      if (ctx.on_index_select != nullptr) (*ctx.on_index_select)(block, t, std::span(s.isel, kk));
      if (p.rows + kk > s.kvpool_rows) {  // no room: attend, then refill the CSA rows
        attend(ctx, block, seg, p, q0, i);
        q0 = i;
        for (int64_t e = 0; e < p.csa; ++e) s.cslot[s.csel[e]] = -1;
        p.rows = p.cbase;
        p.csa = 0;
      }
      for (int32_t j = 0; j < kk; ++j, ++k) {
        const int32_t e = s.isel[j];
        if (s.cslot[e] < 0) {
          s.cslot[e] = static_cast<int32_t>(p.rows);
          s.csel[p.csa++] = e;
          ctx.cache.load_compressed(block, e, s.kvpool + p.rows++ * hd);
        }
        idx[k] = s.cslot[e];
      }
    } else if (ratio > 4) {
      for (int64_t j = 0; j < (t + 1) / ratio; ++j, ++k) idx[k] = static_cast<int32_t>(p.cbase + j);
    }
    std::fill(idx + k, idx + p.n_idx, -1);
  }
  attend(ctx, block, seg, p, q0, n);
  for (int64_t e = 0; e < p.csa; ++e) s.cslot[s.csel[e]] = -1;  // the map is clear between calls
}

// o [n, H, hd] -> out [n, dim]: z_g = wo_a[g] o[group g] per group, then wo_b over the concat.
void output_projection(const Ctx& ctx, int32_t block, int64_t n, float* out) {
  const DeepSeekV4Config& c = ctx.w.config;
  const AttentionWeights& a = ctx.w.blocks[static_cast<size_t>(block)].attn;
  Scratch& s = ctx.s;
  const int64_t group_in = c.n_heads * c.head_dim / c.o_groups;
  const int64_t ro = c.o_lora_rank;
  const int64_t ld_o = c.n_heads * c.head_dim;
  const int64_t ld_oa = c.o_groups * ro;
  for (int64_t g = 0; g < c.o_groups; ++g) {  // einsum("bsgd,grd->bsgr")
    ctx.k.matmul(a.wo_a_groups[static_cast<size_t>(g)], n, s.o + g * group_in, ld_o, s.oa + g * ro,
                 ld_oa);  // [n, g, ro]
  }
  linear(ctx, a.wo_b, n, s.oa, out);  // [n, dim]
}

}  // namespace

// mirrors Attention.forward for the rows of segs (x = attn_norm output [rows, dim]).
void attention_forward(const Ctx& ctx, int32_t block, const float* x, std::span<const Segment> segs,
                       float* out) {
  const DeepSeekV4Config& c = ctx.w.config;
  const AttentionWeights& a = ctx.w.blocks[static_cast<size_t>(block)].attn;
  Scratch& s = ctx.s;
  const int64_t hd = c.head_dim;
  const int64_t rows = segs.back().row0 + segs.back().n;
  project_q_kv(ctx, block, x, segs, rows);  // s.q [rows, H, hd], s.kv [rows, hd]
  const int64_t ratio = c.compress_ratio(block);
  for (const Segment& seg : segs) {  // each sequence on its own cache
    const Ctx sc{ctx.k, ctx.w, ctx.rope, ctx.s, *seg.cache, ctx.on_index_select};
    const float* xs = x + seg.row0 * c.dim;
    const float* seg_kv = s.kv + seg.row0 * hd;
    const int64_t pos0 = seg.pos0, n = seg.n;
    if (ratio == 4) indexer_prepare(sc, block, xs, s.cq + seg.row0 * c.q_lora_rank, pos0, n);
    if (ratio > 0) compressor_forward(sc, block, CompressorSlot::kMain, a.compressor, xs, pos0, n);
    segment_attention(sc, block, seg, seg_kv);  // s.o rows of the segment
    // The ring keeps the last window_size positions (slot = position mod window_size).
    for (int64_t p = std::max(pos0, pos0 + n - c.window_size); p < pos0 + n; ++p) {
      seg.cache->store_window(block, p, seg_kv + (p - pos0) * hd);
    }
  }
  output_projection(ctx, block, rows, out);  // [rows, dim]
}

}  // namespace frugal::v4
