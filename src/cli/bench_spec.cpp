// frugal bench --spec K: speculative decoding with the MTP block against plain decoding, measured
// in the same run, and what it costs.
//
// Per repetition, alternately: plain greedy decode of --gen tokens after the prompt, and the same
// with speculation (k drafts per round, greedy); their tokens/s, ratio and the acceptance rate.
// Then the costs at the end of the plain run, each timed between begin_speculation and rollback so
// every measurement starts from the same position: a verify pass of n = 1 .. k + 1 tokens, c(n),
// and one MTP step, c_mtp. From those, the speedup a given acceptance rate would give (docs/
// BENCHMARKS.md): with each draft accepted independently with probability a, a round yields
// 1 + a + .. + a^k tokens and costs c(k + 1) + k c_mtp (the drafts: the MTP block on the
// positions it lags, then k - 1 chained steps), against c(1) per plain token.
#include "cli/bench_spec.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "engine/memory_plan.h"
#include "engine/probes.h"
#include "engine/speculative.h"

namespace frugal::cli {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace

Result<SpecBench> bench_speculation(engine::Engine& eng, std::span<const int32_t> prompt,
                                    int64_t gen, int32_t k, int reps) {
  v4::Model& model = eng.model();
  const v4::DeepSeekV4Config& c = eng.config();
  const int64_t v = c.vocab_size, hd = c.hc_dim();
  if (prompt.size() < static_cast<size_t>(k) + 1 ||
      prompt.size() + gen + k + 1 > static_cast<size_t>(model.max_seq_len())) {
    return invalid_argument("bench --spec " + std::to_string(k) + ": needs a prompt of at least " +
                            std::to_string(k + 1) + " tokens and a context for prompt + gen + " +
                            std::to_string(k + 1));
  }
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Speculator> spec,
                          engine::Speculator::create(model, k));
  FRUGAL_ASSIGN_OR_RETURN(sample::Sampler sampler,
                          sample::Sampler::create(static_cast<int32_t>(v), {.temperature = 0}));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<kv::V4SequenceCache> cache, eng.new_cache());
  std::vector<float> logits(static_cast<size_t>((k + 1) * v)), hidden(hd);
  const std::span<float> last(logits.data(), v);
  std::vector<double> plain_tps, spec_tps;
  std::vector<std::vector<double>> cost(static_cast<size_t>(k) + 2);  // [n]: seconds; [0]: MTP
  SpecBench b;
  b.k = k;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    // Speculative decode.
    cache->clear();
    spec->reset();
    sampler.reset(0);
    FRUGAL_RETURN_IF_ERROR(spec->prefill(*cache, prompt, last));
    int32_t tok = argmax(last);
    const engine::SpeculationStats s0 = spec->stats();
    auto t0 = Clock::now();
    int64_t produced = 0;
    while (produced < gen) {
      FRUGAL_ASSIGN_OR_RETURN(std::span<const int32_t> out, spec->round(*cache, tok, sampler));
      FRUGAL_RETURN_IF_ERROR(spec->finish_round(*cache, static_cast<int64_t>(out.size()) - 1));
      produced += static_cast<int64_t>(out.size());
      tok = out.back();
    }
    spec_tps.push_back(static_cast<double>(produced) / seconds_since(t0));
    b.drafted += spec->stats().drafted - s0.drafted;
    b.accepted += spec->stats().accepted - s0.accepted;

    // Plain decode, the same prompt.
    cache->clear();
    FRUGAL_RETURN_IF_ERROR(model.forward(*cache, {.ids = prompt, .logits = last}));
    t0 = Clock::now();
    for (int64_t i = 0; i < gen; ++i) {
      const int32_t next[1] = {argmax(last)};
      FRUGAL_RETURN_IF_ERROR(model.forward(*cache, {.ids = next, .logits = last}));
    }
    plain_tps.push_back(static_cast<double>(gen) / seconds_since(t0));

    // Costs from the plain run's end, each rolled back.
    const int64_t length = cache->length(), mtp_length = cache->mtp_length();
    // Distinct tokens (the prompt's first k + 1): a draft differs from the token before it, and
    // the same token twice would select the same experts in hash-routed layers.
    const std::vector<int32_t> ids(prompt.begin(), prompt.begin() + k + 1);
    for (int64_t n = 1; n <= k + 1; ++n) {
      FRUGAL_RETURN_IF_ERROR(cache->begin_speculation(n));
      t0 = Clock::now();
      FRUGAL_RETURN_IF_ERROR(model.forward(*cache, {.ids = std::span(ids.data(), n),
                                                    .logits_mode = v4::LogitsMode::kAll,
                                                    .logits = std::span(logits.data(), n * v),
                                                    .hidden_mode = v4::LogitsMode::kLast,
                                                    .hidden = hidden}));
      cost[static_cast<size_t>(n)].push_back(seconds_since(t0));
      FRUGAL_RETURN_IF_ERROR(cache->rollback(length, mtp_length));
    }
    FRUGAL_RETURN_IF_ERROR(cache->begin_speculation(1));
    t0 = Clock::now();
    FRUGAL_RETURN_IF_ERROR(model.forward_mtp(
        *cache, {.hidden = hidden, .next_ids = std::span(ids.data(), 1), .logits = last}));
    cost[0].push_back(seconds_since(t0));
    FRUGAL_RETURN_IF_ERROR(cache->rollback(length, mtp_length));
  }
  b.plain_tps = engine::median(plain_tps);
  b.spec_tps = engine::median(spec_tps);
  const double c1 = engine::median(cost[1]);
  b.measured.verify.push_back(0.0);  // index n = tokens verified
  for (size_t n = 1; n < cost.size(); ++n)
    b.measured.verify.push_back(engine::median(cost[n]) / c1);
  b.measured.mtp = engine::median(cost[0]) / c1;
  b.by_bytes = engine::spec_cost_by_bytes(c, k);
  return b;
}

// "verify cost vs 1 token: 2 tokens 1.05x (by bytes 1.07x), ...", then the projections.
std::string spec_cost_text(const SpecBench& s) {
  std::string out = "verify cost vs 1 token (measured, by weight bytes):";
  char buf[160];
  for (size_t n = 2; n < s.measured.verify.size(); ++n) {
    std::snprintf(buf, sizeof(buf), "%s %zu tokens %.2fx / %.2fx", n > 2 ? "," : "", n,
                  s.measured.verify[n], s.by_bytes.verify[n]);
    out += buf;
  }
  std::snprintf(buf, sizeof(buf), "; MTP step %.2fx / %.2fx\n", s.measured.mtp, s.by_bytes.mtp);
  out += buf;
  for (double a : {0.6, 0.8, 0.9}) {
    std::snprintf(buf, sizeof(buf),
                  "projected speedup at acceptance %.1f (measured / by bytes):", a);
    out += buf;
    for (int32_t d = 1; d <= s.k; ++d) {
      std::snprintf(buf, sizeof(buf), "%s k=%d %.2fx / %.2fx", d > 1 ? "," : "", d,
                    engine::projected_spec_speedup(s.measured, a, d),
                    engine::projected_spec_speedup(s.by_bytes, a, d));
      out += buf;
    }
    out += "\n";
  }
  return out;
}

}  // namespace frugal::cli
