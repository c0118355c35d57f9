// Speculative decoding with V4's own MTP block (Leviathan et al. 2023, "Fast Inference from
// Transformers via Speculative Decoding"; DeepSeek-V3 report §2.2 on MTP used for it).
//
// Decode on a CPU is bound by weight reads, and a forward over k+1 tokens reads the dense weights
// and the head once for all of them. A round after the sampled token x (main length L, so x will
// sit at position L):
//   draft   the MTP block at position L-1 (main streams h[L-1], token x) gives q1 and a draft
//           d1 ~ q1; for k > 1 it runs on at positions L, L+1, .. on its own output streams (a
//           chain) giving d2 ~ q2, ...
//   verify  one main forward over [x, d1 .. dk] gives p0 .. pk (p(j-1) is the distribution of dj)
//   accept  dj while u < p(j-1)(dj) / qj(dj) (greedy: while dj is p(j-1)'s argmax); at the first
//           rejection the next token is drawn from max(0, p(j-1) - qj) renormalised; when all k
//           pass it is drawn from pk. The tokens so produced follow the main model's sampling
//           distribution exactly, whatever q is; greedy output equals plain greedy output.
//   rollback the cache keeps x and the accepted drafts (kv::V4SequenceCache undo log) and the MTP
//           block its exact positions only (< L); the next round first runs the MTP block on the
//           positions it missed, with the verify pass's streams, and drafts from the last one.
// The MTP block thus lags the main model: between rounds the positions mtp_length() .. L-1 are
// "pending", their main streams kept here.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/status.h"
#include "kv/v4_cache.h"
#include "model/v4/model.h"
#include "sample/sampler.h"

namespace frugal::engine {

struct SpeculationStats {
  int64_t rounds = 0;    // verify passes
  int64_t drafted = 0;   // draft tokens proposed
  int64_t accepted = 0;  // of which accepted
  double acceptance() const { return drafted > 0 ? double(accepted) / double(drafted) : 0.0; }
};

class Speculator {
 public:
  // `model` must have an MTP block; `draft_tokens` (k) in 1 .. 8 and below the model's chunk.
  static Result<std::unique_ptr<Speculator>> create(v4::Model& model, int32_t draft_tokens);

  int32_t draft_tokens() const { return k_; }
  // Whether `cache` holds what this speculator expects: its pending positions are exactly those
  // the MTP block has not run (a cache filled without the speculator is not in step).
  bool in_step(const kv::V4SequenceCache& cache) const;
  // Forgets the pending positions (the cache was cleared).
  void reset() { pending_ = 0; }

  // Prefill with the MTP block kept in step: runs the pending positions (next token ids[0]),
  // then ids; logits[vocab] of the last position. kWindow: when the MTP block attends only to its
  // window (compress ratio 0, as in the official V4 configs), it runs on the last window_size
  // positions only. Its window entry at a position depends on that position's input alone, and no
  // later position reads further back, so the drafts are the same as with kAll (tested) while a
  // long prompt pays for at most one window of MTP positions.
  enum class MtpPrefill : uint8_t { kWindow, kAll };
  Status prefill(kv::V4SequenceCache& cache, std::span<const int32_t> ids, std::span<float> logits,
                 MtpPrefill mtp = MtpPrefill::kWindow);
  // A plain one-token step in step with the MTP block (auto mode's comparison); returns the
  // seconds of the main forward alone, what a plain decode step costs.
  Result<double> plain_step(kv::V4SequenceCache& cache, int32_t token, std::span<float> logits);
  // One round after `token` (sampled and accepted by `sampler`): the accepted drafts and then the
  // next token, each accepted by `sampler` in turn. Room for L + k + 1 positions is the caller's.
  // round = draft, then verify; a caller that batches the verify passes of several sequences
  // calls them apart.
  Result<std::span<const int32_t>> round(kv::V4SequenceCache& cache, int32_t token,
                                         sample::Sampler& sampler);
  // Phase 1: the MTP block on the pending positions (the last with `token`), then k - 1 chained
  // steps; returns the k drafts, drawn from the draft distributions (`sampler`'s filters applied
  // to the MTP logits). Opens the cache's undo log.
  Result<std::span<const int32_t>> draft(kv::V4SequenceCache& cache, int32_t token,
                                         sample::Sampler& sampler);
  // Phase 2: one forward over the token and the drafts; returns the accepted prefix of the drafts
  // and the next token, as round().
  Result<std::span<const int32_t>> verify(kv::V4SequenceCache& cache, sample::Sampler& sampler);
  // Ends the round: the cache keeps `token` and the first `kept` tokens of what round() returned
  // (all but the last when generation goes on; fewer when it stopped on one of them).
  Status finish_round(kv::V4SequenceCache& cache, int64_t kept);

  const SpeculationStats& stats() const { return stats_; }

 private:
  Speculator(v4::Model& model, int32_t k);
  Status catch_up(kv::V4SequenceCache& cache, int32_t next);  // runs the pending positions

  v4::Model* model_;
  int32_t k_;
  int64_t hd_, vocab_;
  int64_t pending_ = 0;                // main positions the MTP block has not run
  std::vector<float> pending_hidden_;  // [k + 1, hc, dim] their main streams
  std::vector<int32_t> pending_next_;  // [k + 1] the token after each, the last one not yet known
  std::vector<int32_t> verify_ids_;    // [k + 1] x, d1 .. dk
  std::vector<float> verify_logits_;   // [k + 1, vocab]
  std::vector<float> verify_hidden_;   // [k + 1, hc, dim]
  std::vector<float> draft_logits_;    // [vocab] MTP logits of one draft
  std::vector<float> draft_hidden_;    // [hc, dim] MTP output streams (the chain's input)
  std::vector<float> q_;               // [k, vocab] draft distributions
  std::vector<float> p_;               // [vocab] one verify distribution
  std::vector<int32_t> out_;           // [k + 1] what round() returns
  int64_t round_length_ = 0;           // main length when the round began
  int64_t round_accepted_ = 0;
  SpeculationStats stats_;
};

}  // namespace frugal::engine
