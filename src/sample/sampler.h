// Next-token sampling from logits: greedy, temperature, top-k, top-p, min-p, repetition /
// presence / frequency penalties and logit bias, with a seeded RNG so that runs are reproducible.
//
// Order of operations for one token (the HF / vLLM order: temperature before the truncations):
//   1. penalties, on each distinct token among the last `penalty_window` accepted tokens, with
//      c = its count there:  l = l > 0 ? l / repetition_penalty : l * repetition_penalty
//      (CTRL, Keskar et al. 2019; HF RepetitionPenaltyLogitsProcessor), then
//      l -= frequency_penalty * c + presence_penalty   (OpenAI API definition);
//   2. logit bias: l += bias[token] (a bias of -inf bans a token);
//   3. temperature == 0: the argmax (lowest id on ties); done;
//   4. top-k: keep the k largest logits (ties: lower id first);
//   5. p = softmax(l / temperature) over what is kept;
//   6. top-p: keep the smallest set of most probable tokens whose mass reaches top_p;
//   7. min-p: drop tokens with p < min_p * max(p);
//   8. draw from what is left, in proportion to p.
// All buffers are sized at creation: sample() and accept() never allocate.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "core/status.h"

namespace frugal::sample {

struct SamplerOptions {
  float temperature = 1.0f;         // 0 = greedy
  int32_t top_k = 0;                // 0 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off; > 1 discourages repeats
  float presence_penalty = 0.0f;    // subtracted once from every token in the window
  float frequency_penalty = 0.0f;   // subtracted per occurrence in the window
  int32_t penalty_window = 64;      // recent tokens the penalties look at (0 = none)
  std::vector<std::pair<int32_t, float>> logit_bias = {};  // token id -> added logit
  uint64_t seed = 0;
};

class Sampler {
 public:
  // Checks every option (errors name it and the allowed range).
  static Result<Sampler> create(int32_t vocab_size, const SamplerOptions& options);

  // The next token from logits[vocab_size]. Fails on a wrong size or when no token has a finite
  // logit after the bias.
  Result<int32_t> sample(std::span<const float> logits);
  // Records a token (prompt or generated) for the penalties.
  void accept(int32_t token);
  // Forgets the accepted tokens and restarts the RNG from `seed`.
  void reset(uint64_t seed);

  // Steps 1-2 only: the logits the truncations and the draw start from (for tests and tools).
  void adjusted_logits(std::span<const float> logits, std::span<float> out);

  // For speculative decoding, whose accept/reject rule needs the distributions themselves:
  // steps 1-7 as probabilities out[vocab] (0 for what the truncations drop; greedy: 1 on the
  // argmax), the distribution sample() draws from.
  Status probabilities(std::span<const float> logits, std::span<float> out);
  // A token drawn in proportion to weights[vocab] (need not sum to 1; <= 0 never drawn), -1 if
  // none is positive; and a uniform number in [0, 1), both from this sampler's RNG.
  int32_t draw(std::span<const float> weights);
  double uniform01() { return uniform(); }

  const SamplerOptions& options() const { return opt_; }
  int32_t vocab_size() const { return vocab_; }

 private:
  Sampler(int32_t vocab_size, SamplerOptions options);
  // Steps 1-7: probs_[idx_[0, n)] unnormalised (their sum `total`); n = 0 when greedy.
  struct Kept {
    int32_t best = 0;
    size_t n = 0;
    double total = 0;
  };
  Result<Kept> prepare(std::span<const float> logits);
  void apply_penalties_and_bias(std::span<float> l);
  double uniform();                               // [0, 1), 53 random bits
  size_t select_top_k(size_t k);                  // idx[0, k) = best k, sorted
  size_t order_nucleus(size_t n, double target);  // see sampler.cpp

  int32_t vocab_;
  SamplerOptions opt_;
  std::mt19937_64 rng_;
  std::vector<float> logits_;     // [vocab] working copy
  std::vector<float> probs_;      // [vocab]
  std::vector<int32_t> idx_;      // [vocab] candidate ids
  std::vector<uint32_t> counts_;  // [vocab] occurrences in the window
  std::vector<uint32_t> stamp_;   // [vocab] marks tokens already penalised this step
  uint32_t stamp_now_ = 0;
  std::vector<int32_t> ring_;  // [penalty_window] last accepted tokens
  size_t ring_pos_ = 0;
  size_t ring_len_ = 0;
  uint32_t hist_[4096] = {};      // top-k radix histogram
  double bucket_mass_[256] = {};  // top-p probability buckets
};

}  // namespace frugal::sample
