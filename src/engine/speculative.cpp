#include "engine/speculative.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace frugal::engine {

using v4::LogitsMode;

Result<std::unique_ptr<Speculator>> Speculator::create(v4::Model& model, int32_t draft_tokens) {
  if (model.config().n_mtp_layers < 1) {
    return invalid_argument(
        "speculative decoding needs the model's MTP block; this model has none");
  }
  if (draft_tokens < 1 || draft_tokens > 8) {
    return invalid_argument("--spec: draft tokens must be 1 to 8, got " +
                            std::to_string(draft_tokens));
  }
  if (draft_tokens + 1 > model.max_chunk()) {
    return invalid_argument("--spec " + std::to_string(draft_tokens) + ": the verify pass of " +
                            std::to_string(draft_tokens + 1) + " tokens exceeds the chunk (" +
                            std::to_string(model.max_chunk()) + ")");
  }
  return std::unique_ptr<Speculator>(new Speculator(model, draft_tokens));
}

Speculator::Speculator(v4::Model& model, int32_t k)
    : model_(&model), k_(k), hd_(model.config().hc_dim()), vocab_(model.config().vocab_size) {
  const size_t rows = static_cast<size_t>(k) + 1;
  pending_hidden_.resize(rows * hd_);
  pending_next_.resize(rows);
  verify_ids_.resize(rows);
  verify_logits_.resize(rows * vocab_);
  verify_hidden_.resize(rows * hd_);
  draft_logits_.resize(vocab_);
  draft_hidden_.resize(hd_);
  q_.resize(static_cast<size_t>(k) * vocab_);
  p_.resize(vocab_);
  out_.reserve(rows);
}

bool Speculator::in_step(const kv::V4SequenceCache& cache) const {
  return cache.length() - cache.mtp_length() == pending_ && (pending_ > 0 || cache.length() == 0);
}

Status Speculator::catch_up(kv::V4SequenceCache& cache, int32_t next) {
  if (pending_ == 0) return ok_status();
  pending_next_[pending_ - 1] = next;
  FRUGAL_RETURN_IF_ERROR(
      model_->forward_mtp(cache, {.hidden = std::span(pending_hidden_.data(), pending_ * hd_),
                                  .next_ids = std::span(pending_next_.data(), pending_),
                                  .logits_mode = LogitsMode::kLast,
                                  .logits = draft_logits_,
                                  .hidden_out = draft_hidden_}));
  pending_ = 0;
  return ok_status();
}

Status Speculator::prefill(kv::V4SequenceCache& cache, std::span<const int32_t> ids,
                           std::span<float> logits, MtpPrefill mtp) {
  if (ids.empty()) return invalid_argument("speculative prefill: no tokens");
  if (!in_step(cache)) return internal_error("speculative prefill: the cache is not in step");
  const v4::DeepSeekV4Config& c = model_->config();
  const int64_t end = cache.length() + static_cast<int64_t>(ids.size());
  // First MTP position whose window entry a later draft reads: end - window (the first draft runs
  // at end - 1 and attends to end - window .. end - 1).
  const int64_t split = end - c.window_size - cache.length();
  if (mtp == MtpPrefill::kWindow && c.compress_ratio(c.n_layers) == 0 && split >= 0) {
    if (split > 0) {  // the main model alone up to there
      FRUGAL_RETURN_IF_ERROR(
          model_->forward(cache, {.ids = ids.first(split), .logits_mode = LogitsMode::kNone}));
    }
    cache.set_mtp_length(cache.length());  // the pending and skipped positions are never read
    pending_ = 0;
    ids = ids.subspan(split);
  }
  FRUGAL_RETURN_IF_ERROR(catch_up(cache, ids[0]));
  FRUGAL_RETURN_IF_ERROR(
      model_->forward(cache, {.ids = ids,
                              .logits_mode = LogitsMode::kLast,
                              .logits = logits,
                              .mtp_next_ids = ids.subspan(1),
                              .hidden_mode = LogitsMode::kLast,
                              .hidden = std::span(pending_hidden_.data(), hd_)}));
  pending_ = 1;
  return ok_status();
}

Result<double> Speculator::plain_step(kv::V4SequenceCache& cache, int32_t token,
                                      std::span<float> logits) {
  FRUGAL_RETURN_IF_ERROR(catch_up(cache, token));
  const int32_t one[1] = {token};
  const auto t0 = std::chrono::steady_clock::now();
  FRUGAL_RETURN_IF_ERROR(
      model_->forward(cache, {.ids = one,
                              .logits_mode = LogitsMode::kLast,
                              .logits = logits,
                              .hidden_mode = LogitsMode::kLast,
                              .hidden = std::span(pending_hidden_.data(), hd_)}));
  pending_ = 1;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Result<std::span<const int32_t>> Speculator::round(kv::V4SequenceCache& cache, int32_t token,
                                                   sample::Sampler& sampler) {
  FRUGAL_RETURN_IF_ERROR(draft(cache, token, sampler).status());
  return verify(cache, sampler);
}

Result<std::span<const int32_t>> Speculator::draft(kv::V4SequenceCache& cache, int32_t token,
                                                   sample::Sampler& sampler) {
  if (!in_step(cache) || pending_ == 0 || cache.speculating()) {
    return internal_error("speculative draft: the cache is not in step");
  }
  round_length_ = cache.length();
  // Draft: the pending positions, the last with `token` -> q1 (exact: the main model's streams).
  FRUGAL_RETURN_IF_ERROR(catch_up(cache, token));
  verify_ids_[0] = token;
  FRUGAL_RETURN_IF_ERROR(cache.begin_speculation(k_ + 1));
  for (int32_t j = 0; j < k_; ++j) {
    if (j > 0) {  // chain: the MTP block on its own output streams and the previous draft
      const int32_t prev[1] = {verify_ids_[j]};
      FRUGAL_RETURN_IF_ERROR(model_->forward_mtp(cache, {.hidden = draft_hidden_,
                                                         .next_ids = prev,
                                                         .logits_mode = LogitsMode::kLast,
                                                         .logits = draft_logits_,
                                                         .hidden_out = draft_hidden_}));
    }
    const std::span<float> q(q_.data() + j * vocab_, vocab_);
    FRUGAL_RETURN_IF_ERROR(sampler.probabilities(draft_logits_, q));
    verify_ids_[j + 1] = sampler.draw(q);
  }
  return std::span<const int32_t>(verify_ids_).subspan(1);
}

Result<std::span<const int32_t>> Speculator::verify(kv::V4SequenceCache& cache,
                                                    sample::Sampler& sampler) {
  if (!cache.speculating() || cache.length() != round_length_) {
    return internal_error("speculative verify: no draft to verify");
  }
  // One forward over the token and the drafts.
  FRUGAL_RETURN_IF_ERROR(model_->forward(cache, {.ids = verify_ids_,
                                                 .logits_mode = LogitsMode::kAll,
                                                 .logits = verify_logits_,
                                                 .hidden_mode = LogitsMode::kAll,
                                                 .hidden = verify_hidden_}));
  // Accept while u < p(d) / q(d); the first rejection draws from max(0, p - q).
  out_.clear();
  int32_t next = -1;
  for (int32_t j = 0; j < k_ && next < 0; ++j) {
    const int32_t d = verify_ids_[j + 1];
    const float* q = q_.data() + j * vocab_;
    FRUGAL_RETURN_IF_ERROR(sampler.probabilities(
        std::span<const float>(verify_logits_.data() + j * vocab_, vocab_), p_));
    if (static_cast<double>(p_[d]) >= static_cast<double>(q[d]) ||
        sampler.uniform01() * q[d] < p_[d]) {
      sampler.accept(d);
      out_.push_back(d);
      continue;
    }
    for (int64_t i = 0; i < vocab_; ++i) p_[i] = std::max(0.0f, p_[i] - q[i]);
    next = sampler.draw(p_);
    if (next < 0) {  // p <= q everywhere but at d: only rounding can get here; p itself then
      FRUGAL_RETURN_IF_ERROR(sampler.probabilities(
          std::span<const float>(verify_logits_.data() + j * vocab_, vocab_), p_));
      next = sampler.draw(p_);
    }
  }
  const int64_t accepted = static_cast<int64_t>(out_.size());
  if (next < 0) {  // every draft accepted: the bonus token from the last verify row
    FRUGAL_ASSIGN_OR_RETURN(
        next, sampler.sample(std::span<const float>(verify_logits_.data() + k_ * vocab_, vocab_)));
  }
  sampler.accept(next);
  out_.push_back(next);
  round_accepted_ = accepted;
  ++stats_.rounds;
  stats_.drafted += k_;
  stats_.accepted += accepted;
  return std::span<const int32_t>(out_);
}

Status Speculator::finish_round(kv::V4SequenceCache& cache, int64_t kept) {
  if (kept < 0 || kept > round_accepted_) {
    return internal_error("speculative round: cannot keep " + std::to_string(kept) + " of " +
                          std::to_string(round_accepted_) + " accepted drafts");
  }
  // The main model keeps token and `kept` drafts; the MTP block its exact positions (< L).
  FRUGAL_RETURN_IF_ERROR(cache.rollback(round_length_ + 1 + kept, round_length_));
  pending_ = kept + 1;
  std::memcpy(pending_hidden_.data(), verify_hidden_.data(), pending_ * hd_ * sizeof(float));
  for (int64_t i = 0; i < kept; ++i) pending_next_[i] = out_[i];
  return ok_status();
}

}  // namespace frugal::engine
