// Model::forward_batch: several sequences in one pass (a server's decode step, or prefill chunks
// mixed with decode tokens). The rows of all sequences are stacked, so every per-token matmul reads
// its weights once for all of them: the attention projections, the hyper-connections, the shared
// expert, the routed experts (moe_forward groups the rows by expert whatever sequence they come
// from) and the head. What needs a sequence's history runs per sequence on its own cache (the
// attention, the compressors, the indexer), through the segments of layers.h.
#include <algorithm>
#include <cstring>
#include <string>

#include "model/v4/model.h"

namespace frugal::v4 {

Status Model::check_batch(std::span<const BatchEntry> entries) const {
  FRUGAL_RETURN_IF_ERROR(check_expert_source());
  const DeepSeekV4Config& c = config();
  if (entries.empty()) return invalid_argument("forward_batch: no sequences");
  int64_t rows = 0, last_rows = 0;
  for (size_t e = 0; e < entries.size(); ++e) {
    const BatchEntry& b = entries[e];
    auto who = [e] { return "forward_batch: sequence " + std::to_string(e) + ": "; };
    if (b.cache == nullptr) return invalid_argument(who() + "no cache");
    for (size_t f = 0; f < e; ++f) {
      if (entries[f].cache == b.cache)
        return invalid_argument(who() + "its cache is in the batch twice");
    }
    const int64_t n = static_cast<int64_t>(b.ids.size());
    if (n == 0) return invalid_argument(who() + "no tokens");
    if (b.cache->length() + n > max_seq_len_) {
      return out_of_range(who() + "position " + std::to_string(b.cache->length() + n - 1) +
                          " is past max_seq_len " + std::to_string(max_seq_len_));
    }
    for (size_t i = 0; i < b.ids.size(); ++i) {
      if (b.ids[i] < 0 || b.ids[i] >= c.vocab_size) {
        return invalid_argument(
            who() + "ids[" + std::to_string(i) + "] = " + std::to_string(b.ids[i]) +
            " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
      }
    }
    const int64_t out_rows =
        b.logits_mode == LogitsMode::kAll ? n : (b.logits_mode == LogitsMode::kLast ? 1 : 0);
    if (static_cast<int64_t>(b.logits.size()) < out_rows * c.vocab_size) {
      return invalid_argument(who() + "logits buffer holds " + std::to_string(b.logits.size()) +
                              " floats, needs " + std::to_string(out_rows * c.vocab_size));
    }
    rows += n;
    last_rows += b.logits_mode == LogitsMode::kLast ? 1 : 0;
  }
  if (rows > max_chunk_) {
    return invalid_argument("forward_batch: " + std::to_string(rows) +
                            " tokens in all; the chunk holds " + std::to_string(max_chunk_));
  }
  if (last_rows > 1 && last_rows > max_batch_) {
    return invalid_argument("forward_batch: " + std::to_string(last_rows) +
                            " sequences want their last logits; the model was created for " +
                            std::to_string(max_batch_) + " (ModelOptions::max_batch)");
  }
  return ok_status();
}

Status Model::forward_batch(std::span<const BatchEntry> entries) {
  FRUGAL_RETURN_IF_ERROR(check_batch(entries));
  FRUGAL_RETURN_IF_ERROR(parallel_failure(run_batch(entries)));
  if (exchange_ == nullptr || weights_->shard.whole()) return ok_status();
  for (const BatchEntry& b : entries) {  // the last stage's logits to every process
    const int64_t rows = b.logits_mode == LogitsMode::kAll    ? static_cast<int64_t>(b.ids.size())
                         : b.logits_mode == LogitsMode::kLast ? 1
                                                              : 0;
    FRUGAL_RETURN_IF_ERROR(
        parallel_failure(exchange_->share_outputs(b.logits.first(rows * config().vocab_size))));
  }
  return ok_status();
}

Status Model::run_batch(std::span<const BatchEntry> entries) {
  for (const BatchEntry& b : entries) {  // the only allocation point
    FRUGAL_RETURN_IF_ERROR(
        b.cache->reserve(b.cache->length() + static_cast<int64_t>(b.ids.size())));
  }
  const DeepSeekV4Config& c = config();
  Scratch& s = scratch_;
  const int64_t d = c.dim, hd = c.hc_dim();
  // The sequences' rows, stacked in order, and their token ids (hash routing reads them).
  std::span<Segment> segs(batch_segments_.data(), entries.size());  // sized max_chunk at creation
  int64_t rows = 0;
  for (size_t e = 0; e < entries.size(); ++e) {
    const BatchEntry& b = entries[e];
    const int64_t n = static_cast<int64_t>(b.ids.size());
    segs[e] = {.cache = b.cache, .row0 = rows, .n = n, .pos0 = b.cache->length()};
    std::copy(b.ids.begin(), b.ids.end(), s.bids + rows);
    rows += n;
  }
  const Ctx ctx{*kernels_, *weights_, rope_,          s,          *entries[0].cache,
                nullptr,   experts_,  expert_counts_, act_quant_, exchange_, embed_};
  const Shard& shard = weights_->shard;
  hint_first_block(ctx, shard.first_block, s.bids, rows);  // their reads run behind the attention
  if (shard.holds_embedding()) {
    FRUGAL_RETURN_IF_ERROR(embed_rows(ctx, s.bids, rows));  // s.x [rows, hc, dim]
  } else {
    FRUGAL_RETURN_IF_ERROR(exchange_->receive_streams(s.x, rows * hd));  // the previous stage's
  }
  for (int32_t blk = shard.first_block; blk < shard.end_block; ++blk) {
    FRUGAL_RETURN_IF_ERROR(block_forward(ctx, blk, s.x, s.bids, segs));
  }
  if (!shard.last_stage()) {  // the next stage takes it from here; the logits come back shared
    FRUGAL_RETURN_IF_ERROR(exchange_->send_streams(s.x, rows * hd));
    for (const Segment& sg : segs) sg.cache->set_length(sg.pos0 + sg.n);
    return ok_status();
  }
  // The head, mirroring ParallelHead.forward: the last rows of the kLast sequences in one matmul
  // (straight into the caller's buffer when there is one), the kAll sequences on their own rows.
  int64_t m = 0;
  float* single = nullptr;
  for (size_t e = 0; e < entries.size(); ++e) {
    if (entries[e].logits_mode != LogitsMode::kLast) continue;
    hc_head(ctx, weights_->hc_head, s.x + (segs[e].row0 + segs[e].n - 1) * hd, 1, s.h + m * d);
    single = entries[e].logits.data();
    ++m;
  }
  if (m > 0) {
    ctx.k.rms_norm(s.h, weights_->norm, m, d, static_cast<float>(c.norm_eps), s.h);  // norm
    ctx.k.matmul(weights_->head, m, s.h, m == 1 ? single : s.blogits);               // [m, vocab]
    if (m > 1) {
      int64_t j = 0;
      for (const BatchEntry& b : entries) {
        if (b.logits_mode != LogitsMode::kLast) continue;
        std::memcpy(b.logits.data(), s.blogits + j++ * c.vocab_size, c.vocab_size * sizeof(float));
      }
    }
  }
  for (size_t e = 0; e < entries.size(); ++e) {
    if (entries[e].logits_mode == LogitsMode::kAll) {
      head_rows(ctx, weights_->hc_head, weights_->norm, s.x + segs[e].row0 * hd, 0, segs[e].n,
                entries[e].logits.data());
    }
    segs[e].cache->set_length(segs[e].pos0 + segs[e].n);
  }
  return ok_status();
}

}  // namespace frugal::v4
