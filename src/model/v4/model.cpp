// The DeepSeek-V4 top-level forward pass (doc §2.9; reference Transformer.forward, Block.forward,
// ParallelHead): embedding -> hc_mult streams -> blocks -> hc_head -> norm -> head.
#include "model/v4/model.h"

#include <algorithm>
#include <cstring>

#include "core/log.h"
#include "quant/weight.h"

namespace frugal::v4 {
namespace {

// ModelOptions::prefill_span = 0: this many chunks (frugal bench's 512-token chunks: 2,048 tokens,
// ~48 per routed expert at V4-Flash's 6 of 256, past the op API's many-token threshold).
constexpr int64_t kDefaultSpanChunks = 4;

// The scratch sizes of a model of `c` created with `o` (Model::create checks the options).
ScratchSizes scratch_sizes(const DeepSeekV4Config& c, const ModelOptions& o, bool expert_rows,
                           int64_t threads) {
  const int64_t seq = o.max_seq_len > 0 ? o.max_seq_len : c.max_position_embeddings;
  const int64_t span = o.prefill_span > 0 ? o.prefill_span : kDefaultSpanChunks * o.max_chunk;
  return {.chunk = o.max_chunk,
          .span = std::max(o.max_chunk, std::min(span, seq)),
          .seq_len = seq,
          .index_tile = o.index_tile,
          .csa_pool = o.csa_pool,
          .batch = o.max_batch,
          .expert_rows = expert_rows,
          .act_quant = o.act_quant,
          .threads = threads};
}

}  // namespace

uint64_t Model::scratch_bytes_for(const DeepSeekV4Config& c, const ModelOptions& options,
                                  bool streamed_experts) {
  Scratch s;
  const int threads = options.threads > 0 ? options.threads : ThreadPool::default_threads();
  return s.plan(c, scratch_sizes(c, options, streamed_experts, threads), nullptr);
}

Result<std::unique_ptr<Model>> Model::create(std::unique_ptr<ModelWeights> weights,
                                             const kernels::Kernels& kernels,
                                             const ModelOptions& options) {
  const DeepSeekV4Config& c = weights->config;
  FRUGAL_RETURN_IF_ERROR(check_model_supported(c));
  if (options.max_chunk < 1) return invalid_argument("model options: max_chunk must be >= 1");
  if (options.index_tile < 1) return invalid_argument("model options: index_tile must be >= 1");
  if (options.max_batch < 1) return invalid_argument("model options: max_batch must be >= 1");
  if (options.prefill_span < 0) return invalid_argument("model options: prefill_span must be >= 0");
  if (options.csa_pool < 1) return invalid_argument("model options: csa_pool must be >= 1");
  if (options.act_quant) FRUGAL_RETURN_IF_ERROR(check_act_quant(c));
  std::unique_ptr<Model> m(new Model());
  m->kernels_ = &kernels;
  m->max_chunk_ = options.max_chunk;
  m->max_batch_ = options.max_batch;
  m->act_quant_ = options.act_quant;
  m->batch_segments_.resize(static_cast<size_t>(options.max_chunk));  // one sequence per token
  m->max_seq_len_ = options.max_seq_len > 0 ? options.max_seq_len : c.max_position_embeddings;
  if (m->max_seq_len_ < 1) return invalid_argument("model options: max_seq_len must be >= 1");
  for (int64_t b = 0; b < c.n_blocks(); ++b) {
    m->rope_.emplace_back(c.rope_head_dim, c.rope_params(b));
  }
  const ScratchSizes sizes =
      scratch_sizes(c, options, weights->streamed_experts || weights->shard.expert_ranks > 1,
                    kernels.pool() != nullptr ? kernels.pool()->n_threads() : 1);
  const uint64_t bytes = m->scratch_.plan(c, sizes, nullptr);
  FRUGAL_ASSIGN_OR_RETURN(m->arena_, Arena::create(bytes, &m->scratch_stats_));
  m->scratch_.plan(c, sizes, &m->arena_);
  FRUGAL_RETURN_IF_ERROR(m->arena_.status());  // a sizing bug if it fires
  m->max_span_ = m->scratch_.max_span;
  std::fill_n(m->scratch_.cslot, m->scratch_.iscores_stride, -1);  // no CSA entry pooled
  m->weights_ = std::move(weights);
  FRUGAL_LOG_INFO("v4: scratch %llu bytes (chunk %lld, span %lld, max_seq_len %lld)",
                  static_cast<unsigned long long>(bytes), static_cast<long long>(m->max_chunk_),
                  static_cast<long long>(m->max_span_), static_cast<long long>(m->max_seq_len_));
  return m;
}

Result<std::unique_ptr<Model>> Model::load(const std::string& dir, const kernels::Kernels& kernels,
                                           const LoadOptions& load_options,
                                           const ModelOptions& options) {
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<ModelWeights> w, load_weights(dir, load_options));
  return create(std::move(w), kernels, options);
}

Status Model::set_expert_counts(std::span<uint64_t> counts) {
  const int64_t want = config().n_blocks() * config().n_routed_experts;
  if (!counts.empty() && static_cast<int64_t>(counts.size()) != want) {
    return invalid_argument("set_expert_counts: " + std::to_string(counts.size()) +
                            " counters; the model has " + std::to_string(want) +
                            " (blocks x n_routed_experts)");
  }
  expert_counts_ = counts.empty() ? nullptr : counts.data();
  return ok_status();
}

Status Model::check_expert_source() const {
  if (weights_->streamed_experts && experts_ == nullptr) {
    return invalid_argument(
        "the routed experts were loaded to stream (LoadOptions::stream_experts) but no expert "
        "source is set (Model::set_expert_source)");
  }
  if (weights_->streamed_embed && embed_ == nullptr) {
    return invalid_argument(
        "the embedding was loaded to stream (LoadOptions::stream_embed) but no embedding source "
        "is set (Model::set_embed_source)");
  }
  if (!weights_->shard.whole() && exchange_ == nullptr) {
    return invalid_argument("the weights hold " + weights_->shard.describe() +
                            " of a parallel run but no exchange is set (Model::set_exchange)");
  }
  return ok_status();
}

Status Model::set_exchange(Exchange* exchange) {
  if (exchange != nullptr && !(exchange->shard() == weights_->shard)) {
    return invalid_argument("set_exchange: the exchange is for " + exchange->shard().describe() +
                            ", the weights hold " + weights_->shard.describe());
  }
  exchange_ = exchange;
  return ok_status();
}

Status Model::parallel_failure(Status st) const {
  if (!st.ok() && exchange_ != nullptr && !weights_->shard.whole()) exchange_->abort(st);
  return st;
}

Status Model::check_request(const SequenceCacheView& cache, const ForwardRequest& r) const {
  FRUGAL_RETURN_IF_ERROR(check_expert_source());
  const DeepSeekV4Config& c = config();
  const int64_t n = static_cast<int64_t>(r.ids.size());
  if (n == 0) return invalid_argument("forward: no tokens");
  if (cache.length() + n > max_seq_len_) {
    return out_of_range("forward: position " + std::to_string(cache.length() + n - 1) +
                        " is past max_seq_len " + std::to_string(max_seq_len_));
  }
  auto check_ids = [&](std::span<const int32_t> ids, const char* what) -> Status {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= c.vocab_size) {
        return invalid_argument(std::string("forward: ") + what + "[" + std::to_string(i) + "] = " +
                                std::to_string(ids[i]) + " is outside the vocabulary [0, " +
                                std::to_string(c.vocab_size) + ")");
      }
    }
    return ok_status();
  };
  auto check_out = [&](LogitsMode mode, std::span<float> out, const char* what) -> Status {
    const int64_t rows = mode == LogitsMode::kAll ? n : (mode == LogitsMode::kLast ? 1 : 0);
    if (static_cast<int64_t>(out.size()) < rows * c.vocab_size) {
      return invalid_argument(std::string("forward: ") + what + " buffer holds " +
                              std::to_string(out.size()) + " floats, needs " +
                              std::to_string(rows * c.vocab_size));
    }
    return ok_status();
  };
  FRUGAL_RETURN_IF_ERROR(check_ids(r.ids, "ids"));
  if (weights_->shard.stages > 1 && !r.mtp_next_ids.empty()) {
    return unsupported(
        "forward: the MTP block (speculative decoding) needs the whole model in one pipeline "
        "stage; this run has " +
        std::to_string(weights_->shard.stages) + " stages");
  }
  FRUGAL_RETURN_IF_ERROR(check_out(r.logits_mode, r.logits, "logits"));
  if (r.hidden_mode != LogitsMode::kNone) {
    const int64_t rows = r.hidden_mode == LogitsMode::kAll ? n : 1;
    if (static_cast<int64_t>(r.hidden.size()) < rows * c.hc_dim()) {
      return invalid_argument("forward: hidden buffer holds " + std::to_string(r.hidden.size()) +
                              " floats, needs " + std::to_string(rows * c.hc_dim()));
    }
  }
  const int64_t n_next = static_cast<int64_t>(r.mtp_next_ids.size());
  if (n_next == 0) {
    if (r.mtp_logits_mode != LogitsMode::kNone)
      return invalid_argument("forward: mtp_logits need mtp_next_ids");
    return ok_status();
  }
  if (c.n_mtp_layers < 1) return invalid_argument("forward: the model has no MTP block");
  if (n_next != n && !(n_next == n - 1 && r.mtp_logits_mode == LogitsMode::kNone)) {
    return invalid_argument(
        "forward: mtp_next_ids must have one id per token (or one fewer, "
        "without mtp_logits)");
  }
  if (cache.mtp_length() != cache.length()) {
    return invalid_argument("forward: the MTP block is at position " +
                            std::to_string(cache.mtp_length()) + " but the sequence at " +
                            std::to_string(cache.length()) + " (MTP must run on every chunk)");
  }
  FRUGAL_RETURN_IF_ERROR(check_ids(r.mtp_next_ids, "mtp_next_ids"));
  return check_out(r.mtp_logits_mode, r.mtp_logits, "mtp_logits");
}

Status Model::check_mtp_request(const SequenceCacheView& cache, const MtpRequest& r) const {
  FRUGAL_RETURN_IF_ERROR(check_expert_source());
  const DeepSeekV4Config& c = config();
  const int64_t n = static_cast<int64_t>(r.next_ids.size());
  if (c.n_mtp_layers < 1) return invalid_argument("forward_mtp: the model has no MTP block");
  if (weights_->shard.stages > 1) {
    return unsupported("forward_mtp: the MTP block needs the whole model in one pipeline stage");
  }
  if (n < 1 || n > max_chunk_) {
    return invalid_argument("forward_mtp: " + std::to_string(n) + " positions; 1 to " +
                            std::to_string(max_chunk_) + " (the chunk) at a time");
  }
  if (cache.mtp_length() + n > max_seq_len_) {
    return out_of_range("forward_mtp: positions up to " + std::to_string(cache.mtp_length() + n) +
                        " exceed max_seq_len " + std::to_string(max_seq_len_));
  }
  if (static_cast<int64_t>(r.hidden.size()) != n * c.hc_dim()) {
    return invalid_argument("forward_mtp: hidden holds " + std::to_string(r.hidden.size()) +
                            " floats, needs " + std::to_string(n * c.hc_dim()));
  }
  for (size_t i = 0; i < r.next_ids.size(); ++i) {
    if (r.next_ids[i] < 0 || r.next_ids[i] >= c.vocab_size) {
      return invalid_argument("forward_mtp: next_ids[" + std::to_string(i) + "] = " +
                              std::to_string(r.next_ids[i]) + " is outside the vocabulary");
    }
  }
  const int64_t rows = r.logits_mode == LogitsMode::kAll ? n : (r.logits_mode == LogitsMode::kLast);
  if (static_cast<int64_t>(r.logits.size()) < rows * c.vocab_size) {
    return invalid_argument("forward_mtp: logits buffer holds " + std::to_string(r.logits.size()) +
                            " floats, needs " + std::to_string(rows * c.vocab_size));
  }
  if (!r.hidden_out.empty() && static_cast<int64_t>(r.hidden_out.size()) != c.hc_dim()) {
    return invalid_argument("forward_mtp: hidden_out must hold hc * dim floats");
  }
  return ok_status();
}

// mirrors Block.forward. The attention half runs max_chunk rows at a time: the rows of `segs`
// when they fit (every forward_batch, a chunk of Model::forward), else consecutive pieces of the
// single sequence (Model::forward's span), each attending to the positions the pieces before it
// stored. The FFN half runs once over all rows, so the span's tokens share each routed expert.
Status block_forward(const Ctx& ctx, int32_t block, float* x, const int32_t* ids,
                     std::span<const Segment> segs) {
  const int64_t n = segs.back().row0 + segs.back().n;  // rows of every sequence
  const DeepSeekV4Config& c = ctx.w.config;
  const BlockWeights& bw = ctx.w.blocks[static_cast<size_t>(block)];
  Scratch& s = ctx.s;
  const float eps = static_cast<float>(c.norm_eps);
  auto attention_half = [&](float* xp, std::span<const Segment> piece) {
    const int64_t rows = piece.back().row0 + piece.back().n;
    hc_pre(ctx, bw.hc_attn, xp, rows, s.h);                    // [rows, dim]
    ctx.k.rms_norm(s.h, bw.attn_norm, rows, c.dim, eps, s.h);  // attn_norm
    attention_forward(ctx, block, s.h, piece, s.y);            // [rows, dim]
    hc_post(ctx, xp, s.y, rows);                               // [rows, hc, dim]
  };
  if (n <= s.max_chunk) {
    attention_half(x, segs);
  } else {
    FRUGAL_CHECK(segs.size() == 1 && n <= s.max_span);
    for (int64_t r0 = 0; r0 < n; r0 += s.max_chunk) {
      const Segment piece[1] = {{.cache = segs[0].cache,
                                 .row0 = 0,
                                 .n = std::min(s.max_chunk, n - r0),
                                 .pos0 = segs[0].pos0 + r0}};
      attention_half(x + r0 * c.hc_dim(), piece);
    }
  }
  hc_pre(ctx, bw.hc_ffn, x, n, s.h);                                  // [n, dim]
  ctx.k.rms_norm(s.h, bw.ffn_norm, n, c.dim, eps, s.h);               // ffn_norm
  FRUGAL_RETURN_IF_ERROR(moe_forward(ctx, block, s.h, ids, n, s.y));  // [n, dim]
  hc_post(ctx, x, s.y, n);                                            // [n, hc, dim]
  return ok_status();
}

void matmul_rows(const Ctx& ctx, const quant::WeightView& w, int64_t m, const float* x, float* y) {
  const int64_t pieces = (m + kMatmulRows - 1) / kMatmulRows;
  const int64_t rows = pieces > 0 ? (m + pieces - 1) / pieces : 0;
  for (int64_t r0 = 0; r0 < m; r0 += rows) {
    ctx.k.matmul(w, std::min(rows, m - r0), x + r0 * w.cols, y + r0 * w.rows);
  }
}

Status embed_lookup(const Ctx& ctx, const int32_t* ids, int64_t n, float* out) {
  if (ctx.embed != nullptr) return ctx.embed->rows(std::span(ids, static_cast<size_t>(n)), out);
  const int64_t d = ctx.w.config.dim;
  for (int64_t i = 0; i < n; ++i) quant::dequantize_row(ctx.w.embed, ids[i], out + i * d);
  return ok_status();
}

// h = embed(ids); h.unsqueeze(2).repeat(1, 1, hc_mult, 1): s.x [n, hc, dim] (uses s.h).
Status embed_rows(const Ctx& ctx, const int32_t* ids, int64_t n) {
  const DeepSeekV4Config& c = ctx.w.config;
  const int64_t d = c.dim, hd = c.hc_dim();
  FRUGAL_RETURN_IF_ERROR(embed_lookup(ctx, ids, n, ctx.s.h));  // [n, dim]
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < c.hc_mult; ++j) {
      std::memcpy(ctx.s.x + i * hd + j * d, ctx.s.h + i * d, d * sizeof(float));
    }
  }
  return ok_status();
}

// mirrors ParallelHead.forward: logits = head(norm(hc_head(x))), f32, of rows [row0, n) of the
// streams x [n, hc, dim] -> out [n - row0, vocab].
void head_rows(const Ctx& ctx, const HcWeights& hcw, const float* norm, const float* x,
               int64_t row0, int64_t n, float* out) {
  const DeepSeekV4Config& c = ctx.w.config;
  const int64_t rows = n - row0;
  hc_head(ctx, hcw, x + row0 * c.hc_dim(), rows, ctx.s.h);  // [rows, dim]
  ctx.k.rms_norm(ctx.s.h, norm, rows, c.dim, static_cast<float>(c.norm_eps), ctx.s.h);  // norm
  matmul_rows(ctx, ctx.w.head, rows, ctx.s.h, out);  // [rows, vocab]
}

namespace {

// Rows of a chunk [first, first + n) of a request of `total` rows that a kLast / kAll output
// takes, and where they go in `out` (rows of `width`). kLast takes the request's last row only.
void copy_rows_out(LogitsMode mode, const float* rows, int64_t first, int64_t n, int64_t total,
                   int64_t width, std::span<float> out) {
  if (mode == LogitsMode::kAll) {
    std::memcpy(out.data() + first * width, rows, n * width * sizeof(float));
  } else if (mode == LogitsMode::kLast && first + n == total) {
    std::memcpy(out.data(), rows + (n - 1) * width, width * sizeof(float));
  }
}

}  // namespace

// The rows [first, first + n) of request r, n <= max_span: the main blocks (see block_forward),
// the head, then the MTP block max_chunk rows at a time.
Status Model::run_span(SequenceCacheView& cache, const ForwardRequest& r, int64_t first,
                       int64_t n) {
  const DeepSeekV4Config& c = config();
  Scratch& s = scratch_;
  const Ctx ctx{*kernels_,         *weights_, rope_,          s,          cache,
                r.on_index_select, experts_,  expert_counts_, act_quant_, exchange_, embed_};
  const int64_t pos0 = cache.length();
  const int64_t hd = c.hc_dim();
  const int32_t* ids = r.ids.data() + first;
  const int64_t total = static_cast<int64_t>(r.ids.size());
  const Shard& shard = weights_->shard;
  hint_first_block(ctx, shard.first_block, ids, n);  // their reads run behind the attention
  if (shard.holds_embedding()) {
    FRUGAL_RETURN_IF_ERROR(embed_rows(ctx, ids, n));  // s.x [n, hc, dim]
  } else {
    FRUGAL_RETURN_IF_ERROR(exchange_->receive_streams(s.x, n * hd));  // the previous stage's
  }
  const Segment seg[1] = {{.cache = &cache, .row0 = 0, .n = n, .pos0 = pos0}};
  for (int32_t b = shard.first_block; b < shard.end_block; ++b) {
    FRUGAL_RETURN_IF_ERROR(block_forward(ctx, b, s.x, ids, seg));
  }
  if (!shard.last_stage()) {  // the next stage takes it from here; the outputs come back shared
    FRUGAL_RETURN_IF_ERROR(exchange_->send_streams(s.x, n * hd));
    cache.set_length(pos0 + n);
    return ok_status();
  }

  // The head on rows [row, row + rows) of the request (x: their streams), kAll, or on the
  // request's last row (kLast).
  auto head = [&](const HcWeights& hcw, const float* norm, const float* x, int64_t row,
                  int64_t rows, LogitsMode mode, std::span<float> out) {
    if (mode == LogitsMode::kNone || (mode == LogitsMode::kLast && row + rows != total)) return;
    const int64_t row0 = mode == LogitsMode::kAll ? 0 : rows - 1;
    head_rows(ctx, hcw, norm, x, row0, rows,
              out.data() + (mode == LogitsMode::kAll ? row * c.vocab_size : 0));
  };
  head(weights_->hc_head, weights_->norm, s.x, first, n, r.logits_mode, r.logits);
  copy_rows_out(r.hidden_mode, s.x, first, n, total, hd, r.hidden);  // before MTP clobbers s.x
  cache.set_length(pos0 + n);
  // The MTP block on the rows whose next token is known (all, or all but the request's last).
  const int64_t mtp_n = std::min<int64_t>(n, static_cast<int64_t>(r.mtp_next_ids.size()) - first);
  const int32_t mtp_block = static_cast<int32_t>(c.n_layers);
  const MtpWeights& m = weights_->blocks[static_cast<size_t>(mtp_block)].mtp;
  for (int64_t r0 = 0; r0 < mtp_n; r0 += max_chunk_) {
    const int64_t rows = std::min(max_chunk_, mtp_n - r0);
    FRUGAL_RETURN_IF_ERROR(mtp_forward(ctx, mtp_block, s.x + r0 * hd,
                                       r.mtp_next_ids.data() + first + r0, pos0 + r0,
                                       rows));  // s.x_mtp [rows, hc, dim]
    head(m.hc_head, m.norm, s.x_mtp, first + r0, rows, r.mtp_logits_mode, r.mtp_logits);
    cache.set_mtp_length(pos0 + r0 + rows);
  }
  return ok_status();
}

Status Model::forward_mtp(SequenceCacheView& cache, const MtpRequest& r) {
  FRUGAL_RETURN_IF_ERROR(check_mtp_request(cache, r));
  const DeepSeekV4Config& c = config();
  const int64_t n = static_cast<int64_t>(r.next_ids.size());
  const int64_t hd = c.hc_dim();
  const int64_t pos0 = cache.mtp_length();
  FRUGAL_RETURN_IF_ERROR(cache.reserve(pos0 + n));  // the only allocation point
  Scratch& s = scratch_;
  const Ctx ctx{*kernels_, *weights_, rope_,          s,          cache,
                nullptr,   experts_,  expert_counts_, act_quant_, exchange_, embed_};
  std::memcpy(s.x, r.hidden.data(), n * hd * sizeof(float));  // mtp_forward clobbers its input
  const int32_t mtp_block = static_cast<int32_t>(c.n_layers);
  FRUGAL_RETURN_IF_ERROR(
      parallel_failure(mtp_forward(ctx, mtp_block, s.x, r.next_ids.data(), pos0, n)));
  const MtpWeights& m = weights_->blocks[static_cast<size_t>(mtp_block)].mtp;
  if (r.logits_mode != LogitsMode::kNone) {
    head_rows(ctx, m.hc_head, m.norm, s.x_mtp, r.logits_mode == LogitsMode::kAll ? 0 : n - 1, n,
              r.logits.data());
  }
  if (!r.hidden_out.empty()) {
    std::memcpy(r.hidden_out.data(), s.x_mtp + (n - 1) * hd, hd * sizeof(float));
  }
  cache.set_mtp_length(pos0 + n);
  if (exchange_ != nullptr && !weights_->shard.whole()) {  // the same bytes on every process
    const int64_t rows =
        r.logits_mode == LogitsMode::kAll ? n : (r.logits_mode == LogitsMode::kLast ? 1 : 0);
    FRUGAL_RETURN_IF_ERROR(
        parallel_failure(exchange_->share_outputs(r.logits.first(rows * c.vocab_size))));
    FRUGAL_RETURN_IF_ERROR(parallel_failure(exchange_->share_outputs(r.hidden_out)));
  }
  return ok_status();
}

Status Model::forward(SequenceCacheView& cache, const ForwardRequest& request) {
  FRUGAL_RETURN_IF_ERROR(check_request(cache, request));
  const int64_t total = static_cast<int64_t>(request.ids.size());
  FRUGAL_RETURN_IF_ERROR(cache.reserve(cache.length() + total));  // the only allocation point
  for (int64_t first = 0; first < total; first += max_span_) {
    FRUGAL_RETURN_IF_ERROR(
        parallel_failure(run_span(cache, request, first, std::min(max_span_, total - first))));
  }
  if (exchange_ == nullptr || weights_->shard.whole()) return ok_status();
  // The last stage's outputs to every process (all of them computed them with one stage).
  const DeepSeekV4Config& c = config();
  auto rows = [total](LogitsMode mode) -> int64_t {
    return mode == LogitsMode::kAll ? total : (mode == LogitsMode::kLast ? 1 : 0);
  };
  FRUGAL_RETURN_IF_ERROR(parallel_failure(
      exchange_->share_outputs(request.logits.first(rows(request.logits_mode) * c.vocab_size))));
  FRUGAL_RETURN_IF_ERROR(parallel_failure(
      exchange_->share_outputs(request.hidden.first(rows(request.hidden_mode) * c.hc_dim()))));
  FRUGAL_RETURN_IF_ERROR(parallel_failure(exchange_->share_outputs(
      request.mtp_logits.first(rows(request.mtp_logits_mode) * c.vocab_size))));
  return ok_status();
}

}  // namespace frugal::v4
