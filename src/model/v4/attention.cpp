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
  k.matmul(a.wq_a, n, x, s.cq);                             // [n, q_lora_rank]
  k.rms_norm(s.cq, a.q_norm, n, c.q_lora_rank, eps, s.cq);  // qr = q_norm(wq_a x)
  k.matmul(a.wq_b, n, s.cq, s.q);                           // [n, H, hd]
  k.rms_norm(s.q, n * c.n_heads, hd, eps, s.q);             // per head, no weight
  k.matmul(a.wkv, n, x, s.kv);                              // [n, hd]
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

// Gathers the candidate keys of query t (row i of its segment, whose kv rows start at seg_kv) into
// s.keys: the window (positions max(0, t-W+1) .. t; in-pass ones from seg_kv, older ones from the
// ring), then the compressed entries (HCA: all j < (t+1)/r; CSA: the indexer's top-k). Returns
// the count. ctx.cache is the segment's cache.
int64_t gather_candidates(const Ctx& ctx, int32_t block, const float* seg_kv, int64_t pos0,
                          int64_t i) {
  const DeepSeekV4Config& c = ctx.w.config;
  Scratch& s = ctx.s;
  const int64_t hd = c.head_dim;
  const int64_t t = pos0 + i;
  int64_t n = 0;
  for (int64_t p = std::max<int64_t>(0, t - c.window_size + 1); p <= t; ++p, ++n) {
    float* dst = s.keys + n * hd;
    if (p >= pos0) {
      std::memcpy(dst, seg_kv + (p - pos0) * hd, hd * sizeof(float));
    } else {
      ctx.cache.load_window(block, p, dst);
    }
  }
  const int64_t ratio = c.compress_ratio(block);
  if (ratio == 4) {  // CSA: get_compress_topk_idxs replaced by the indexer's choice
    const int32_t kk = indexer_select(ctx, block, i, t, s.isel);
    if (ctx.on_index_select != nullptr) (*ctx.on_index_select)(block, t, std::span(s.isel, kk));
    for (int32_t j = 0; j < kk; ++j, ++n) {
      ctx.cache.load_compressed(block, s.isel[j], s.keys + n * hd);
    }
  } else if (ratio > 4) {  // HCA: get_compress_topk_idxs, every completed block
    for (int64_t j = 0; j < (t + 1) / ratio; ++j, ++n) {
      ctx.cache.load_compressed(block, j, s.keys + n * hd);
    }
  }
  FRUGAL_CHECK(n <= s.max_candidates);
  return n;
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
  ctx.k.matmul(a.wo_b, n, s.oa, out);  // [n, dim]
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
  const RopeTable& rope = ctx.rope[static_cast<size_t>(block)];
  for (const Segment& seg : segs) {  // each sequence on its own cache
    const Ctx sc{ctx.k, ctx.w, ctx.rope, ctx.s, *seg.cache, ctx.on_index_select};
    const float* xs = x + seg.row0 * c.dim;
    const float* seg_kv = s.kv + seg.row0 * hd;
    const int64_t pos0 = seg.pos0, n = seg.n;
    if (ratio == 4) indexer_prepare(sc, block, xs, s.cq + seg.row0 * c.q_lora_rank, pos0, n);
    if (ratio > 0) compressor_forward(sc, block, CompressorSlot::kMain, a.compressor, xs, pos0, n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t n_cand = gather_candidates(sc, block, seg_kv, pos0, i);  // s.keys
      const int64_t row = seg.row0 + i;
      float* o = s.o + row * c.n_heads * hd;  // [H, hd]
      ctx.k.attention({.q = s.q + row * c.n_heads * hd,
                       .kv = s.keys,
                       .idx = s.kidx,
                       .sink = a.attn_sink,
                       .out = o,
                       .m = 1,
                       .n_heads = c.n_heads,
                       .head_dim = hd,
                       .n_kv = n_cand,
                       .n_idx = n_cand,
                       .scale = 1.0f / std::sqrt(static_cast<float>(hd))});  // sparse_attn
      rope.cos_sin(pos0 + i, s.cos, s.sin);
      ctx.k.rope(o, c.n_heads, hd, c.rope_head_dim, s.cos, s.sin,
                 kernels::RopeDirection::kInverse);  // de-rotation with the query position
    }
    // The ring keeps the last window_size positions (slot = position mod window_size).
    for (int64_t p = std::max(pos0, pos0 + n - c.window_size); p < pos0 + n; ++p) {
      seg.cache->store_window(block, p, seg_kv + (p - pos0) * hd);
    }
  }
  output_projection(ctx, block, rows, out);  // [rows, dim]
}

}  // namespace frugal::v4
