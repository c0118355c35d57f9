#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace frugal::sample {
namespace {

Status bad_option(const std::string& name, const std::string& expected, double got) {
  return invalid_argument("sampler option " + name + ": expected " + expected + ", got " +
                          std::to_string(got));
}

}  // namespace

Result<Sampler> Sampler::create(int32_t vocab_size, const SamplerOptions& o) {
  if (vocab_size <= 0) return bad_option("vocab_size", "a positive count", vocab_size);
  if (!std::isfinite(o.temperature) || o.temperature < 0) {
    return bad_option("temperature", "a finite value >= 0", o.temperature);
  }
  if (o.top_k < 0) return bad_option("top_k", "a value >= 0 (0 = off)", o.top_k);
  if (!(o.top_p > 0 && o.top_p <= 1)) return bad_option("top_p", "a value in (0, 1]", o.top_p);
  if (!(o.min_p >= 0 && o.min_p <= 1)) return bad_option("min_p", "a value in [0, 1]", o.min_p);
  if (!std::isfinite(o.repetition_penalty) || o.repetition_penalty <= 0) {
    return bad_option("repetition_penalty", "a finite value > 0", o.repetition_penalty);
  }
  if (!std::isfinite(o.presence_penalty)) {
    return bad_option("presence_penalty", "a finite value", o.presence_penalty);
  }
  if (!std::isfinite(o.frequency_penalty)) {
    return bad_option("frequency_penalty", "a finite value", o.frequency_penalty);
  }
  if (o.penalty_window < 0) return bad_option("penalty_window", "a value >= 0", o.penalty_window);
  for (const auto& [id, bias] : o.logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return bad_option("logit_bias", "token ids in [0, " + std::to_string(vocab_size) + ")", id);
    }
    if (std::isnan(bias) || bias == std::numeric_limits<float>::infinity()) {
      return bad_option("logit_bias[" + std::to_string(id) + "]", "a finite value or -inf", bias);
    }
  }
  return Sampler(vocab_size, o);
}

Sampler::Sampler(int32_t vocab_size, SamplerOptions options)
    : vocab_(vocab_size),
      opt_(std::move(options)),
      rng_(opt_.seed),
      logits_(size_t(vocab_size)),
      probs_(size_t(vocab_size)),
      idx_(size_t(vocab_size)),
      counts_(size_t(vocab_size), 0),
      stamp_(size_t(vocab_size), 0),
      ring_(size_t(opt_.penalty_window)) {}

void Sampler::reset(uint64_t seed) {
  rng_.seed(seed);
  std::fill(counts_.begin(), counts_.end(), 0);
  ring_pos_ = ring_len_ = 0;
}

void Sampler::accept(int32_t token) {
  if (ring_.empty() || token < 0 || token >= vocab_) return;
  if (ring_len_ == ring_.size()) {
    --counts_[ring_[ring_pos_]];  // the oldest token leaves the window
  } else {
    ++ring_len_;
  }
  ring_[ring_pos_] = token;
  ++counts_[token];
  ring_pos_ = (ring_pos_ + 1) % ring_.size();
}

double Sampler::uniform() { return double(rng_() >> 11) * 0x1.0p-53; }

void Sampler::apply_penalties_and_bias(std::span<float> l) {
  const bool rep = opt_.repetition_penalty != 1.0f;
  const bool additive = opt_.presence_penalty != 0.0f || opt_.frequency_penalty != 0.0f;
  if ((rep || additive) && ring_len_ > 0) {
    if (++stamp_now_ == 0) {  // wrapped: clear the marks once every 2^32 steps
      std::fill(stamp_.begin(), stamp_.end(), 0);
      stamp_now_ = 1;
    }
    for (size_t k = 0; k < ring_len_; ++k) {
      const int32_t t = ring_[k];
      if (stamp_[t] == stamp_now_) continue;  // each distinct token once
      stamp_[t] = stamp_now_;
      float v = l[t];
      if (rep) v = v > 0 ? v / opt_.repetition_penalty : v * opt_.repetition_penalty;
      v -= opt_.frequency_penalty * float(counts_[t]) + opt_.presence_penalty;
      l[t] = v;
    }
  }
  for (const auto& [id, bias] : opt_.logit_bias) l[id] += bias;
}

void Sampler::adjusted_logits(std::span<const float> logits, std::span<float> out) {
  std::copy(logits.begin(), logits.end(), out.begin());
  apply_penalties_and_bias(out);
}

namespace {
// Maps a float to a uint32 whose unsigned order is the float order (-inf lowest).
inline uint32_t ordered_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
}  // namespace

// Radix select: a histogram of the top 12 bits of the (order-preserving) logit bits finds the
// bucket that holds the k-th largest; only that bucket needs a selection. O(V), two passes.
size_t Sampler::select_top_k(size_t k) {
  const float* l = logits_.data();
  int32_t* idx = idx_.data();
  const size_t v = size_t(vocab_);
  auto by_logit = [l](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
  if (v < 16 * 4096) {  // small vocabularies: clearing the histogram would dominate
    for (size_t i = 0; i < v; ++i) idx[i] = int32_t(i);
    std::nth_element(idx, idx + k - 1, idx + v, by_logit);
    std::sort(idx, idx + k, by_logit);
    return k;
  }
  std::fill(std::begin(hist_), std::end(hist_), 0u);
  for (size_t i = 0; i < v; ++i) ++hist_[ordered_bits(l[i]) >> 20];
  size_t above = 0;  // ids in buckets higher than `cut`
  uint32_t cut = 4095;
  while (above + hist_[cut] < k) above += hist_[cut--];
  size_t m = 0, tail = v;  // bucket `cut` collects at the end of idx
  for (size_t i = 0; i < v; ++i) {
    const uint32_t b = ordered_bits(l[i]) >> 20;
    if (b > cut) {
      idx[m++] = int32_t(i);
    } else if (b == cut) {
      idx[--tail] = int32_t(i);
    }
  }
  const size_t need = k - m;
  std::nth_element(idx + tail, idx + tail + need - 1, idx + v, by_logit);
  std::copy(idx + tail, idx + tail + need, idx + m);
  std::sort(idx, idx + k, by_logit);  // deterministic draw order; the top-p scan needs it
  return k;
}

// Puts the most probable ids first, far enough that a prefix scan over idx reaches `target`
// mass: ids are bucketed by the bits of their probability (quarter-octave buckets, p <= 1), so
// whole buckets above the one where the mass crosses `target` are taken without sorting and only
// the crossing bucket is sorted. The set kept is exactly the one a full sort would give.
size_t Sampler::order_nucleus(size_t n, double target) {
  const float* p = probs_.data();
  int32_t* idx = idx_.data();
  std::fill(std::begin(bucket_mass_), std::end(bucket_mass_), 0.0);
  auto bucket_of = [](float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof(u));
    const uint32_t d = (0x3F800000u - u) >> 21;  // 0 for p == 1, +4 per halving
    return d < 255 ? d : 255u;
  };
  for (size_t k = 0; k < n; ++k) bucket_mass_[bucket_of(p[idx[k]])] += p[idx[k]];
  double cum = 0;
  uint32_t cross = 0;
  while (cross < 255 && cum + bucket_mass_[cross] < target) cum += bucket_mass_[cross++];
  // Buckets before `cross` first (any fixed order), then `cross` sorted by probability; the
  // rest is dropped.
  int32_t* mid = std::partition(idx, idx + n, [&](int32_t t) { return bucket_of(p[t]) < cross; });
  int32_t* end = std::partition(mid, idx + n, [&](int32_t t) { return bucket_of(p[t]) == cross; });
  std::sort(mid, end, [p](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  const size_t e = size_t(end - idx);
  return e;
}

Result<Sampler::Kept> Sampler::prepare(std::span<const float> logits) {
  if (logits.size() != size_t(vocab_)) {
    return invalid_argument("sampler: got " + std::to_string(logits.size()) + " logits, expected " +
                            std::to_string(vocab_));
  }
  float* l = logits_.data();
  for (int32_t i = 0; i < vocab_; ++i) l[i] = std::isnan(logits[i]) ? -INFINITY : logits[i];
  apply_penalties_and_bias(logits_);

  // Greedy, and the maximum for a stable softmax.
  int32_t best = 0;
  for (int32_t i = 1; i < vocab_; ++i) {
    if (l[i] > l[best]) best = i;
  }
  if (!std::isfinite(l[best])) {
    return invalid_argument("sampler: no token has a finite logit (all banned or -inf)");
  }
  if (opt_.temperature == 0.0f) return Kept{.best = best, .n = 0, .total = 0.0};

  int32_t* idx = idx_.data();
  size_t n = size_t(vocab_);
  bool sorted = false;  // idx[0, n) sorted by probability, highest first
  if (opt_.top_k > 0 && size_t(opt_.top_k) < n) {
    n = select_top_k(size_t(opt_.top_k));
    sorted = true;
  } else {
    for (size_t i = 0; i < n; ++i) idx[i] = int32_t(i);
  }

  float* p = probs_.data();
  const float inv_t = 1.0f / opt_.temperature;
  double total = 0;
  for (size_t k = 0; k < n; ++k) {
    const int32_t t = idx[k];
    p[t] = std::exp((l[t] - l[best]) * inv_t);  // relative to the best: p[best] == 1
    total += p[t];
  }

  if (opt_.top_p < 1.0f) {
    const double target = double(opt_.top_p) * total;
    if (!sorted) n = order_nucleus(n, target);
    double cum = 0;
    size_t cut = 0;
    while (cut < n && cum < target) cum += p[idx[cut++]];
    n = cut;
    total = cum;
  }

  if (opt_.min_p > 0.0f) {
    const float threshold = opt_.min_p * p[best];  // p[best] == 1 before normalisation
    size_t kept = 0;
    total = 0;
    for (size_t k = 0; k < n; ++k) {
      if (p[idx[k]] >= threshold) {
        idx[kept++] = idx[k];
        total += p[idx[k]];
      }
    }
    n = kept;
  }

  return Kept{.best = best, .n = n, .total = total};
}

Result<int32_t> Sampler::sample(std::span<const float> logits) {
  FRUGAL_ASSIGN_OR_RETURN(const Kept kept, prepare(logits));
  if (kept.n == 0) return kept.best;  // greedy
  double u = uniform() * kept.total;
  for (size_t k = 0; k < kept.n; ++k) {
    u -= probs_[idx_[k]];
    if (u < 0) return idx_[k];
  }
  return idx_[kept.n - 1];  // rounding left u at ~0
}

Status Sampler::probabilities(std::span<const float> logits, std::span<float> out) {
  if (out.size() != size_t(vocab_))
    return invalid_argument("sampler: probabilities need vocab floats");
  FRUGAL_ASSIGN_OR_RETURN(const Kept kept, prepare(logits));
  std::fill(out.begin(), out.end(), 0.0f);
  if (kept.n == 0) {  // greedy: all mass on the argmax
    out[kept.best] = 1.0f;
    return ok_status();
  }
  const double inv = 1.0 / kept.total;
  for (size_t k = 0; k < kept.n; ++k) out[idx_[k]] = static_cast<float>(probs_[idx_[k]] * inv);
  return ok_status();
}

int32_t Sampler::draw(std::span<const float> weights) {
  double total = 0;
  int32_t last = -1;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] > 0) {
      total += weights[i];
      last = static_cast<int32_t>(i);
    }
  }
  if (last < 0) return -1;
  double u = uniform() * total;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] <= 0) continue;
    u -= weights[i];
    if (u < 0) return static_cast<int32_t>(i);
  }
  return last;  // rounding left u at ~0
}

}  // namespace frugal::sample
