// Internal to src/model/v4: the pieces of the V4 forward pass (one file each, named after the
// reference modules) and the scratch buffers they share. Every buffer is carved from one
// allocation sized at model creation (Scratch::plan); the forward pass never allocates.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/arena.h"
#include "kernels/kernels.h"
#include "model/v4/cache.h"
#include "model/v4/exchange.h"
#include "model/v4/embed_source.h"
#include "model/v4/expert_source.h"
#include "model/v4/rope.h"
#include "model/v4/weights.h"

namespace frugal::v4 {

// Called with the compressed entries the indexer picked for the query at `pos` of CSA `block`
// (entry ids, best first), before the attention reads them. A hook may replace the ids (same
// count): the golden tests substitute the reference's choice where index scores tie, so that
// the rest of the model is compared on the same entries. Tests and diagnostics only.
using IndexSelectHook = std::function<void(int32_t block, int64_t pos, std::span<int32_t> entries)>;

// What the scratch is sized for.
struct ScratchSizes {
  int64_t chunk = 0;       // rows of the attention half of a block (and of forward_batch)
  int64_t span = 0;        // rows of a whole pass (>= chunk): the streams and the MoE half
  int64_t seq_len = 0;     // longest sequence
  int64_t index_tile = 0;  // at most this many indexer keys scored per matmul
  int64_t csa_pool = 0;    // CSA entries the attention's pool holds (at least index_topk)
  int64_t batch = 1;       // forward_batch's kLast rows
  // Each routed expert's rows kept apart (Scratch::epair): the experts stream, or several
  // processes share them (expert parallel).
  bool expert_rows = false;
  bool act_quant = false;  // ModelOptions::act_quant: Scratch::aq is needed
  int64_t threads = 1;     // the pool's: per-thread buffers of the parallel experts (moe.cpp)
};

// f32 (and int32) work buffers. n = tokens of a chunk (<= max_chunk), N = of a span (<= max_span:
// Model::forward's rows, which the MoE half of a block takes at once).
struct Scratch {
  float* x = nullptr;      // [N, hc, dim] the hyper-connection streams
  float* x_mtp = nullptr;  // [n, hc, dim] streams of the MTP block
  float* h = nullptr;      // [N, dim] hc_pre output, then normed sub-layer input
  float* y = nullptr;      // [N, dim] sub-layer output
  float* mixes = nullptr;  // [N, (2+hc)*hc]
  float* post = nullptr;   // [N, hc]
  float* comb = nullptr;   // [N, hc, hc]
  float* x_new = nullptr;  // [n, hc, dim] hc_post output (must not overlap its input)
  // attention
  float* cq = nullptr;   // [n, q_lora_rank]
  float* q = nullptr;    // [n, n_heads, head_dim]
  float* kv = nullptr;   // [n, head_dim]
  float* o = nullptr;    // [n, n_heads, head_dim]
  float* oa = nullptr;   // [n, o_groups * o_lora_rank]
  float* cos = nullptr;  // [rope_head_dim / 2]
  float* sin = nullptr;  // [rope_head_dim / 2]
  float* kvpool =
      nullptr;  // [kvpool_rows, head_dim] the entries a chunk attends to (attention.cpp)
  int32_t* aidx = nullptr;   // [n, max_candidates] each query's indices into kvpool (-1: none)
  int32_t* cslot = nullptr;  // [max_seq_len / 4 + 1] CSA entry -> its kvpool row, -1 when absent
  int32_t* csel = nullptr;   // [kvpool_rows] the CSA entries in kvpool
  // compressor
  float* ca = nullptr;     // [n, c*d] wkv outputs
  float* cb = nullptr;     // [n, c*d] wgate outputs
  float* entry = nullptr;  // [max(head_dim, index_head_dim)]
  float* pool = nullptr;   // [2 * max_ratio] softmax over candidates of one column
  // indexer
  float* iq = nullptr;       // [n, index_n_heads, index_head_dim]
  float* iw = nullptr;       // [n, index_n_heads]
  float* iscores = nullptr;  // [index_group, iscores_stride] scores of a group of queries
  float* ikeys = nullptr;    // [index_tile, index_head_dim] one tile of keys (f32 at most)
  float* idots = nullptr;    // [index_group, index_n_heads, index_tile] their dot products
  int32_t* isel = nullptr;   // [index_topk]
  // MoE (the span's tokens are grouped by routed expert, so each expert is read once per span)
  float* gate = nullptr;     // [N, n_routed_experts] scores
  float* biased = nullptr;   // [n_routed_experts] scores + bias of one token
  int32_t* esel = nullptr;   // [N, n_activated_experts] selected experts
  float* eweight = nullptr;  // [N, n_activated_experts] their routing weights
  int32_t* eoff = nullptr;   // [n_routed_experts + 1] start of each expert's rows in etok
  int32_t* etok = nullptr;   // [N * n_activated_experts] tokens by expert, ascending per expert
  float* ewt = nullptr;      // [N * n_activated_experts] the routing weight of each etok row
  float* xg = nullptr;       // [N, dim] inputs gathered for one expert
  float* eg = nullptr;       // [min(N, kMatmulRows), moe_inter_dim]
  float* eu = nullptr;       // [min(N, kMatmulRows), moe_inter_dim]
  float* eo = nullptr;       // [N, dim]
  // Each etok row's expert output [rows, dim]: rows = N * n_activated_experts when the experts
  // stream or are shared with other processes (ScratchSizes::expert_rows), else
  // min(N, kParallelExpertTokens) * n_activated_experts with expert_threads, else none.
  float* epair = nullptr;
  int32_t* eused = nullptr;  // [n_routed_experts] the experts the span uses, ascending
  // [N * n_activated_experts] the next block's guessed experts (expert_rows only)
  int32_t* ehint = nullptr;
  // The parallel experts of a small pass (moe.cpp), per thread: [expert_threads,
  // kParallelExpertRows, dim] gathered inputs, [.., moe_inter_dim] gate and up. None with one
  // thread or with act_quant (expert_threads = 0).
  float* pxg = nullptr;
  float* peg = nullptr;
  float* peu = nullptr;
  int64_t expert_threads = 0;
  int64_t parallel_moe_passes = 0;  // MoE layers run that way (Model::parallel_moe_passes)
  int64_t parallel_moe_rounds = 0;  // streamed experts run one per thread, per round of threads
  float* ee = nullptr;       // [n, dim] MTP: e_proj(enorm(embed(next)))
  float* blogits = nullptr;  // [max_batch, vocab] forward_batch: the last rows' logits
  int32_t* bids = nullptr;   // [n] forward_batch: the token ids of all rows

  int64_t max_chunk = 0;
  int64_t max_span = 0;
  int64_t max_seq_len = 0;
  int64_t max_candidates = 0;  // attention indices per query
  int64_t kvpool_rows = 0;
  int64_t index_tile = 0;      // indexer keys scored per matmul
  int64_t index_group = 0;     // indexer queries scored per matmul
  int64_t iscores_stride = 0;  // max_seq_len / 4 + 1
  // linear(): the inputs of an FP8 / FP4 linear rounded to e4m3 (ModelOptions::act_quant only).
  float* aq = nullptr;  // [aq_rows, aq_cols]
  // aq as bf16 for the bf16 dot-product matmul: [aq_rows, Kernels::bf16_x_stride(aq_cols)].
  uint16_t* aqb = nullptr;
  int64_t aq_rows = 0;
  int64_t aq_cols = 0;  // the widest linear input
  std::span<uint16_t> aq_bf16() const {
    return {aqb, static_cast<size_t>(aq_rows * kernels::Kernels::bf16_x_stride(aq_cols))};
  }

  // Takes the buffers from `arena` (nullptr: only computes the size). Returns the bytes needed.
  uint64_t plan(const DeepSeekV4Config& c, const ScratchSizes& sizes, Arena* arena);
};

// Rows [row0, row0 + n) of a pass belong to one sequence: its cache, positions pos0 .. pos0+n-1.
// A pass over one sequence has one segment; a batched pass (Model::forward_batch) one per sequence.
struct Segment {
  SequenceCacheView* cache = nullptr;
  int64_t row0 = 0;
  int64_t n = 0;
  int64_t pos0 = 0;
};

// Everything a layer function reads.
struct Ctx {
  const kernels::Kernels& k;  // the op API
  const ModelWeights& w;
  const std::vector<RopeTable>& rope;  // per block
  Scratch& s;
  SequenceCacheView& cache;
  const IndexSelectHook* on_index_select = nullptr;  // optional (tests, diagnostics)
  ExpertSource* experts = nullptr;    // the routed experts when streamed (else m.experts)
  uint64_t* expert_counts = nullptr;  // optional [blocks, n_routed_experts]: selections counted
  bool act_quant = false;             // ModelOptions::act_quant (see linear())
  Exchange* exchange = nullptr;       // the other processes of a parallel run (else nullptr)
  EmbedSource* embed = nullptr;       // the embedding's rows when streamed (else w.embed)
};

// Rows a matmul of the span takes at once: the op API's many-token path runs every token through
// each decoded weight tile, so the activations of more tokens than fit in L2 are read from
// further out once per tile. Measured on this machine (FP8 [2048, 4096], 2 threads): 2,048 tokens
// at once 76-78 GFLOP/s, in pieces of 128-512 95-98.
inline constexpr int64_t kMatmulRows = 512;
// A pass of at most kParallelExpertTokens rows (a batched decode step) runs its routed experts with
// at most kParallelExpertRows rows each one expert per thread (moe.cpp): with one token each, an
// expert's three matmuls split across the threads cost three fork / joins for ~0.1 ms of work
// each, and the ~45 distinct experts of 8 sequences per layer ~130 of them.
inline constexpr int64_t kParallelExpertTokens = 16;
inline constexpr int64_t kParallelExpertRows = 4;
// model.cpp — y [m, w.rows] = x [m, w.cols] W^T in equal pieces of at most kMatmulRows rows (so
// no piece is smaller than half of one, and each row's sums are those of one call).
void matmul_rows(const Ctx& ctx, const quant::WeightView& w, int64_t m, const float* x, float* y);

// linear.cpp — mirrors linear() of the reference: y [m, w.rows] = x [m, w.cols] W^T, where with
// ctx.act_quant the input of an FP8 or FP4 weight is first rounded as act_quant(x, 128) does
// (e4m3, power-of-two scale per 1x128 block). For the linears the reference runs through linear()
// (wq_a, wq_b, wkv, wo_b, indexer wq_b, experts, MTP e_proj / h_proj), not wo_a, which it applies
// dequantized in an einsum.
void linear(const Ctx& ctx, const quant::WeightView& w, int64_t m, const float* x, float* y);
// linear.cpp — the inputs act_quant rounds must be whole 128-element blocks: an error naming the
// config field that is not.
Status check_act_quant(const DeepSeekV4Config& c);

// hyper_connections.cpp — mirrors Block.hc_pre / Block.hc_post / ParallelHead.hc_head.
void hc_pre(const Ctx& ctx, const HcWeights& hc, const float* x, int64_t n, float* h);
void hc_post(const Ctx& ctx, float* x, const float* y, int64_t n);
void hc_head(const Ctx& ctx, const HcWeights& hc, const float* x, int64_t n, float* h);

// attention.cpp — mirrors Attention.forward on the rows of `segs` (x = attn_norm output [rows,
// dim], out [rows, dim]): the projections run once over all rows, the compressor, the indexer and
// the attention itself per segment on its own cache (ctx.cache is not used).
void attention_forward(const Ctx& ctx, int32_t block, const float* x, std::span<const Segment> segs,
                       float* out);
// compressor.cpp — mirrors Compressor.forward (one token at a time through the decode state; the
// entries completed by these tokens are written to the cache).
void compressor_forward(const Ctx& ctx, int32_t block, CompressorSlot slot,
                        const CompressorWeights& c, const float* x, int64_t pos0, int64_t n);
// indexer.cpp — mirrors Indexer.forward: queries + weights for the chunk (and its compressor),
// then the top-k selection of one query.
void indexer_prepare(const Ctx& ctx, int32_t block, const float* x, const float* qr, int64_t pos0,
                     int64_t n);
// Scores of the g <= index_group queries at chunk rows i0 .. (tokens pos0 + i0 ..) into s.iscores.
void indexer_score(const Ctx& ctx, int32_t block, int64_t i0, int64_t g, int64_t pos0);
// The top-k entries of query row k of s.iscores (token t) into out; returns the count.
int32_t indexer_select(const Ctx& ctx, int64_t k, int64_t t, int32_t* out);
// moe.cpp — mirrors MoE.forward (Gate + routed experts + shared expert). Fails only when a
// streamed expert cannot be read.
Status moe_forward(const Ctx& ctx, int32_t block, const float* x, const int32_t* ids, int64_t n,
                   float* out);
// moe.cpp — before a pass runs main block `block` (its first): when that block routes by hash
// (V4: the first n_hash_layers), its experts follow from the token ids alone, so a streamed
// source gets them as an exact hint now and their reads run behind the block's attention instead
// of starting when its MoE routes (that MoE then hints the hash blocks after it). Nothing
// otherwise.
void hint_first_block(const Ctx& ctx, int32_t block, const int32_t* ids, int64_t n);
// model.cpp — mirrors Block.forward on the streams x [rows, hc, dim] of `segs`.
Status block_forward(const Ctx& ctx, int32_t block, float* x, const int32_t* ids,
                     std::span<const Segment> segs);
// model.cpp — out [n, dim] = embed(ids): from ctx.embed when the table is streamed, else from
// w.embed. Fails only when a streamed row cannot be read.
Status embed_lookup(const Ctx& ctx, const int32_t* ids, int64_t n, float* out);
// model.cpp — the embedding of n tokens repeated over the hc streams into s.x [n, hc, dim].
Status embed_rows(const Ctx& ctx, const int32_t* ids, int64_t n);
// model.cpp — mirrors ParallelHead.forward: logits = head(norm(hc_head(x))), f32, of rows
// [row0, n) of the streams x [n, hc, dim] -> out [n - row0, vocab] (uses s.h).
void head_rows(const Ctx& ctx, const HcWeights& hcw, const float* norm, const float* x,
               int64_t row0, int64_t n, float* out);
// mtp.cpp — mirrors MTPBlock.forward up to the head: main streams x_main [n, hc, dim] (clobbered)
// and the next ids -> the MTP block's output streams in s.x_mtp [n, hc, dim].
Status mtp_forward(const Ctx& ctx, int32_t block, float* x_main, const int32_t* next_ids,
                   int64_t pos0, int64_t n);

}  // namespace frugal::v4
