// The DeepSeek-V4 model: weights, RoPE tables and the scratch buffers of the forward pass.
//
// One entry point runs tokens of one sequence at positions cache.length()..: a prefill (any
// length, from position 0) or a decode step (one token). A prefill goes through the blocks a span
// of up to prefill_span tokens at a time: in each block the attention takes the span max_chunk
// tokens at a time and the MoE takes all of it, so a routed expert is read once per span.
// Chunking is exact: every per-token quantity is computed the same way whatever the chunk size,
// and the attention reads the same cache-exact entries (model/v4/cache.h), so the logits of a
// position do not depend on how the sequence was split: bit for bit with the scalar kernels
// (tested); the AVX2 and AVX-512 GEMM paths may order a row's sum differently for a different
// number of tokens, which stays at summation-noise level.
//
// A Model runs one forward at a time (its scratch is shared); sequences are independent caches.
// The forward pass allocates nothing: the scratch comes from an arena sized at creation for
// max_chunk tokens, the span and max_seq_len positions, and the cache grows only in reserve(),
// called once per request before any computation.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/arena.h"
#include "core/memory.h"
#include "core/status.h"
#include "kernels/kernels.h"
#include "model/v4/cache.h"
#include "model/v4/embed_source.h"
#include "model/v4/exchange.h"
#include "model/v4/layers.h"
#include "model/v4/rope.h"
#include "model/v4/weights.h"

namespace frugal::v4 {

struct ModelOptions {
  int64_t max_chunk = 64;     // tokens per forward chunk (sizes the scratch)
  int64_t max_seq_len = 0;    // longest sequence; 0 = config max_position_embeddings
  int64_t index_tile = 1024;  // indexer keys scored per matmul (sizes the scratch)
  int64_t max_batch = 1;      // sequences whose last-position logits one forward_batch computes
  // Prompt tokens whose MoE layers run together (Model::forward): a long prompt goes through the
  // blocks a span at a time, layer by layer; within a layer the attention runs max_chunk tokens
  // at a time (it needs the positions before it) and the MoE once over the whole span, so each
  // routed expert is read once per span and multiplies span * n_activated_experts /
  // n_routed_experts tokens on average (48 at V4-Flash's 6 of 256 and a span of 2,048). The span
  // costs ~130 KiB per token at V4-Flash dims (the streams, the MoE's inputs and outputs; 96 KiB
  // more with streamed experts), a chunk ~480 KiB. 0: four chunks. Used: at least max_chunk, at
  // most max_seq_len.
  int64_t prefill_span = 0;
  // CSA entries the attention of a chunk holds decoded at once (16 MiB of f32 entries at
  // head_dim 512): every entry of a context up to 32K, so a chunk decodes each entry its queries
  // pick once; with more, the chunk's queries attend in groups whose picks fit. At least
  // index_topk are used.
  int64_t csa_pool = 8192;
  // The deployed numerics of DeepSeek's inference (architecture doc §2.A): the input of every
  // linear whose weight is FP8 or FP4 is rounded to e4m3 in 1x128 blocks with power-of-two scales
  // first, as the reference's act_quant before fp8_gemm / fp4_gemm. The products stay exact in f32,
  // so the logits then differ from the reference run with activation quantization only by f32
  // summation order. Off (the default): f32 activations, the reference numerics of this engine.
  // Needs the linear inputs (hidden_size, q_lora_rank, o_groups * o_lora_rank,
  // moe_intermediate_size) to be multiples of 128.
  bool act_quant = false;
  // Threads of the kernels' pool, for the per-thread buffers of the routed experts of a small pass
  // (a batched decode step runs them one expert per thread; ~128 KiB per thread at V4-Flash dims).
  // Model::create takes the count from its kernels; this is for scratch_bytes_for, where 0 means
  // one per CPU the process may run on (ThreadPool::default_threads), as the engine's pool.
  int threads = 0;
};

enum class LogitsMode : uint8_t {
  kLast,  // logits of the last position only: [vocab]
  kAll,   // logits of every position: [n, vocab] (perplexity)
  kNone,
};

struct ForwardRequest {
  std::span<const int32_t> ids = {};  // tokens at positions cache.length() ..
  LogitsMode logits_mode = LogitsMode::kLast;
  std::span<float> logits = {};  // [vocab] or [n, vocab]
  // MTP (optional): next_ids[i] = token at position pos+1 for ids[i]; the MTP block then predicts
  // the token after it. Needs cache.mtp_length() == cache.length() (MTP run on every chunk so far).
  // Empty: the MTP block does not run. n - 1 ids (with mtp_logits_mode kNone): it runs on all but
  // the last position, whose next token is not known yet (speculative decoding samples it from
  // this forward's logits and runs that position with forward_mtp).
  std::span<const int32_t> mtp_next_ids = {};
  LogitsMode mtp_logits_mode = LogitsMode::kNone;
  std::span<float> mtp_logits = {};  // [vocab] or [n, vocab]
  // Optional: the streams after the last block, what the MTP block drafts from (before hc_head):
  // kLast [hc, dim] of the last position, kAll [n, hc, dim].
  LogitsMode hidden_mode = LogitsMode::kNone;
  std::span<float> hidden = {};
  const IndexSelectHook* on_index_select = nullptr;  // optional: see layers.h
};

// One sequence's part of a batched forward (Model::forward_batch).
struct BatchEntry {
  SequenceCacheView* cache = nullptr;
  std::span<const int32_t> ids = {};  // tokens at positions cache->length() ..
  LogitsMode logits_mode = LogitsMode::kLast;
  std::span<float> logits = {};  // [vocab] or [n, vocab]
};

// The MTP block alone at positions cache.mtp_length() .. + n - 1 (speculative decoding). It lags
// the main model by one position, since the token after the main model's last position is sampled
// from its logits first; to draft more than one token it also runs ahead of the main model on its
// own output streams (a chain), and the cache rolls those positions back after verification.
struct MtpRequest {
  std::span<const float> hidden;      // [n, hc, dim] the streams each position drafts from
  std::span<const int32_t> next_ids;  // [n] the token after each position
  LogitsMode logits_mode = LogitsMode::kLast;
  std::span<float> logits = {};      // [vocab] or [n, vocab]
  std::span<float> hidden_out = {};  // optional [hc, dim]: the block's streams at the last position
};

class Model {
 public:
  // `kernels` (the op API, owned by the engine) must outlive the model.
  static Result<std::unique_ptr<Model>> create(std::unique_ptr<ModelWeights> weights,
                                               const kernels::Kernels& kernels,
                                               const ModelOptions& options = {});
  // Loads a checkpoint directory and creates the model.
  static Result<std::unique_ptr<Model>> load(const std::string& dir,
                                             const kernels::Kernels& kernels,
                                             const LoadOptions& load_options = {},
                                             const ModelOptions& options = {});

  const DeepSeekV4Config& config() const { return weights_->config; }
  const ModelWeights& weights() const { return *weights_; }
  int64_t max_seq_len() const { return max_seq_len_; }
  uint64_t scratch_bytes() const { return arena_.capacity(); }
  // MoE layers whose routed experts ran one expert per thread (a small pass on several threads:
  // moe.cpp); for tests and diagnostics.
  int64_t parallel_moe_passes() const { return scratch_.parallel_moe_passes; }
  // Rounds of streamed experts run one per thread (an ExpertSource handing over one expert per
  // thread at once, in a small pass); for tests and diagnostics.
  int64_t parallel_moe_rounds() const { return scratch_.parallel_moe_rounds; }
  // What scratch_bytes() will be for a model of `c` created with `options` (before loading).
  static uint64_t scratch_bytes_for(const DeepSeekV4Config& c, const ModelOptions& options,
                                    bool streamed_experts);

  // Runs the tokens of `request` through the model, appending them to `cache`.
  // A failure mid-pass (a streamed expert that cannot be read) leaves the cache's length as it
  // was, but positions at and past it may have overwritten ring slots and compressor rows: a
  // caller that keeps the sequence rolls it back (engine::guarded_forward).
  Status forward(SequenceCacheView& cache, const ForwardRequest& request);
  // Several sequences in one pass: each weight is read once for the tokens of all of them (the
  // projections, the shared and routed experts, grouped across sequences as within a chunk, the
  // head), while the compressors, the indexer and the attention run per sequence on its own
  // cache. All tokens together at most max_chunk, kLast entries at most max_batch; no MTP. The
  // logits of each sequence equal forward()'s (bit for bit with the scalar kernels, tested).
  Status forward_batch(std::span<const BatchEntry> entries);
  // Runs the MTP block alone (see MtpRequest); n <= max_chunk.
  Status forward_mtp(SequenceCacheView& cache, const MtpRequest& request);
  int64_t max_chunk() const { return max_chunk_; }

  // The routed experts' source when they stream (weights().streamed_experts; required then,
  // before the first forward; owned by the caller, outliving the model's use of it).
  void set_expert_source(ExpertSource* source) { experts_ = source; }
  ExpertSource* expert_source() const { return experts_; }
  // The embedding's rows when its table streams (weights().streamed_embed; required then, before
  // the first forward; owned by the caller, outliving the model's use of it).
  void set_embed_source(EmbedSource* source) { embed_ = source; }
  EmbedSource* embed_source() const { return embed_; }
  // The other processes of a parallel run (docs/PARALLEL.md): required before the first forward
  // when the weights hold a shard of the model (weights().shard.ranks > 1), with the same shard;
  // owned by the caller. Every process then runs the same forward calls; the outputs (logits,
  // streams) reach every process.
  Status set_exchange(Exchange* exchange);
  Exchange* exchange() const { return exchange_; }
  // Counts every routing choice from now on into counts[block * n_routed_experts + expert]
  // (n_blocks() x n_routed_experts entries; frugal profile); empty stops counting. The span must
  // outlive the counting.
  Status set_expert_counts(std::span<uint64_t> counts);

 private:
  Model() = default;
  Status check_request(const SequenceCacheView& cache, const ForwardRequest& r) const;
  Status run_span(SequenceCacheView& cache, const ForwardRequest& r, int64_t first, int64_t n);
  Status run_batch(std::span<const BatchEntry> entries);  // forward_batch after its checks
  Status check_mtp_request(const SequenceCacheView& cache, const MtpRequest& r) const;
  Status check_batch(std::span<const BatchEntry> entries) const;
  Status check_expert_source() const;
  // After a request was checked, a failure on one process of a parallel run would leave the
  // others waiting in a collective: it stops the run (Exchange::abort); alone, it is returned.
  Status parallel_failure(Status st) const;

  const kernels::Kernels* kernels_ = nullptr;
  std::unique_ptr<ModelWeights> weights_;
  ExpertSource* experts_ = nullptr;
  EmbedSource* embed_ = nullptr;
  Exchange* exchange_ = nullptr;
  uint64_t* expert_counts_ = nullptr;
  std::vector<RopeTable> rope_;  // per block
  int64_t max_chunk_ = 0;
  bool act_quant_ = false;  // ModelOptions::act_quant
  int64_t max_span_ = 0;    // Model::forward's rows per pass (ModelOptions::prefill_span)
  int64_t max_batch_ = 1;
  std::vector<Segment> batch_segments_;  // forward_batch, [max_chunk]
  int64_t max_seq_len_ = 0;
  MemoryStats scratch_stats_;
  Arena arena_;  // every activation buffer (Scratch), sized at creation
  Scratch scratch_;
};

}  // namespace frugal::v4
