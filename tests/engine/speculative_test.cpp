// Speculative decoding with the MTP block on the shipped tiny model: greedy output is the plain
// greedy output token for token, the cache ends as a plain run leaves it, sampling keeps the
// main model's distribution (a chi-square test with fixed seeds), auto mode decides by measuring.
//
// Identity needs the verify pass (k + 1 tokens) to give the same logits as one-token decode steps:
// the scalar kernels do, bit for bit (model.h), so the identity tests run on them. On the SIMD
// kernels the two differ at summation-noise level and a near tie of the top two logits could go
// either way.
#include "engine/speculative.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "engine/generator.h"
#include "test_model.h"

namespace frugal::engine {
namespace {

std::unique_ptr<Engine> tiny(std::optional<kernels::Isa> isa, int64_t ctx = 1100) {
  EngineOptions eo;
  eo.model_dir = test_model_dir();
  eo.threads = 1;
  eo.max_seq_len = ctx;
  eo.progress = false;
  eo.isa = isa;
  Result<std::unique_ptr<Engine>> e = Engine::load(eo);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? std::move(*e) : nullptr;
}

std::vector<int32_t> prompt_ids(const Engine& e, const std::string& text) {
  std::vector<int32_t> ids = {0};  // BOS
  EXPECT_TRUE(e.tokenizer().encode_append(text, {}, &ids).ok());
  return ids;
}

GenerationStats generate(Generator& g, const std::vector<int32_t>& prompt) {
  Result<GenerationStats> st = g.generate(prompt, [](std::string_view) { return ok_status(); });
  EXPECT_TRUE(st.ok()) << st.status().to_string();
  return st.ok() ? *st : GenerationStats{};
}

GenerateOptions greedy(int64_t n, SpecMode mode, int32_t k = 1) {
  GenerateOptions o{.max_tokens = n, .stop_at_eos = false};
  o.sampling.temperature = 0;
  o.spec = {.mode = mode, .draft_tokens = k};
  return o;
}

// 1,000 greedy tokens, k = 1, 2 and 3 drafts per round (one test process each): the same tokens
// as plain decoding, and the main model's cache ends byte for byte as the plain run leaves it.
class SpeculativeGreedy : public ::testing::TestWithParam<int32_t> {};

TEST_P(SpeculativeGreedy, OutputIsPlainGreedyOutput) {
  std::unique_ptr<Engine> e = tiny(kernels::Isa::kScalar);
  ASSERT_NE(e, nullptr);
  const std::vector<int32_t> p = prompt_ids(*e, "ROMEO:\nBut soft, what light");
  auto plain = Generator::create(*e, greedy(1000, SpecMode::kOff));
  ASSERT_TRUE(plain.ok());
  const GenerationStats want = generate(**plain, p);
  ASSERT_EQ(want.generated_tokens, 1000);
  auto plain_cache = (*plain)->cache().snapshot();
  ASSERT_TRUE(plain_cache.ok());
  {
    const int32_t k = GetParam();
    auto spec = Generator::create(*e, greedy(1000, SpecMode::kOn, k));
    ASSERT_TRUE(spec.ok()) << spec.status().to_string();
    const GenerationStats got = generate(**spec, p);
    EXPECT_EQ(got.ids, want.ids) << "k = " << k;
    EXPECT_EQ(got.spec_k, k);
    EXPECT_GT(got.spec.accepted, 0);
    EXPECT_LT(got.decode_steps, want.decode_steps);  // fewer forward passes for the same tokens
    std::printf("k = %d: %lld of %lld drafts accepted (%.2f), %lld verify passes for 999 tokens\n",
                k, static_cast<long long>(got.spec.accepted),
                static_cast<long long>(got.spec.drafted), got.spec.acceptance(),
                static_cast<long long>(got.decode_steps));
    auto spec_cache = (*spec)->cache().snapshot();
    ASSERT_TRUE(spec_cache.ok());
    EXPECT_EQ(spec_cache->length, plain_cache->length);
    const size_t main_parts = 4 * static_cast<size_t>(e->config().n_layers);  // MTP after these
    for (size_t i = 0; i < main_parts; ++i) {
      EXPECT_TRUE(spec_cache->parts[i] == plain_cache->parts[i])
          << "k = " << k << ": block " << i / 4 << " part " << i % 4;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Drafts, SpeculativeGreedy, ::testing::Values(1, 2, 3));

// A chat: the second prompt extends the first turn's prompt and reply; the speculating generator
// reuses its cache (MTP block in step) and still matches plain decoding, also when a stop string
// ends the reply in the middle of a round.
TEST(Speculative, PrefixReuseAndStopsMatchPlain) {
  std::unique_ptr<Engine> e = tiny(kernels::Isa::kScalar, 512);
  ASSERT_NE(e, nullptr);
  std::vector<int32_t> p = prompt_ids(*e, "KING:\nNow is the winter");
  for (const std::vector<std::string>& stops : {std::vector<std::string>{}, {"the"}}) {
    GenerateOptions po = greedy(60, SpecMode::kOff), so = greedy(60, SpecMode::kOn, 2);
    po.stop_strings = so.stop_strings = stops;
    auto plain = Generator::create(*e, po);
    auto spec = Generator::create(*e, so);
    ASSERT_TRUE(plain.ok() && spec.ok());
    std::vector<int32_t> turn = p;
    for (int t = 0; t < 3; ++t) {
      const GenerationStats a = generate(**plain, turn), b = generate(**spec, turn);
      EXPECT_EQ(a.ids, b.ids) << "turn " << t;
      EXPECT_EQ(a.stop, b.stop);
      EXPECT_EQ((*plain)->history(), (*spec)->history());
      if (t > 0) {
        EXPECT_EQ(b.reused_tokens, a.reused_tokens);
      }
      turn = (*spec)->history();
      const std::vector<int32_t> more = prompt_ids(*e, "\nQUEEN:\n");
      turn.insert(turn.end(), more.begin() + 1, more.end());
    }
  }
}

// Sampling: the speculative accept/reject rule keeps the main model's distribution. 2,000 runs of
// three tokens (temperature 1, top-k 6) from fixed seeds: the second token (drafted, then accepted
// or redrawn) is compared, for each first token, with the main model's distribution computed
// directly. On the best kernels: the verify pass and the direct forward differ at summation-noise
// level (~1e-6 of the logits), far below what 2,000 draws can see. Chi-square over all groups; the
// bound is the 1e-6 upper quantile, so a correct rule passes (deterministically: the seeds are
// fixed) and a wrong one (drafts always accepted, i.e. the MTP block's distribution; or the
// residual not taken) fails by far.
TEST(Speculative, SamplingKeepsTheMainModelDistribution) {
  std::unique_ptr<Engine> e = tiny(std::nullopt, 64);
  ASSERT_NE(e, nullptr);
  const std::vector<int32_t> p = prompt_ids(*e, "First Citizen:\nWe are");
  const int64_t v = e->config().vocab_size;
  // Three tokens: a round runs only when more than one token is still to come.
  GenerateOptions o{.max_tokens = 3, .stop_at_eos = false};
  o.sampling = {.temperature = 1.0f, .top_k = 6};
  o.spec = {.mode = SpecMode::kOn, .draft_tokens = 1};
  std::map<int32_t, std::map<int32_t, int>> counts;  // first token -> second token -> runs
  int64_t drafted = 0, accepted = 0;
  constexpr int kRuns = 2000;
  for (int r = 0; r < kRuns; ++r) {
    o.sampling.seed = 1000 + r;
    auto g = Generator::create(*e, o);
    ASSERT_TRUE(g.ok());
    const GenerationStats st = generate(**g, p);
    ASSERT_EQ(st.ids.size(), 3u);
    counts[st.ids[0]][st.ids[1]]++;
    drafted += st.spec.drafted;
    accepted += st.spec.accepted;
  }
  // Both branches of the rule ran many times.
  EXPECT_GT(accepted, kRuns / 10);
  EXPECT_LT(accepted, drafted - kRuns / 10);
  // The expected distribution of the second token for each first token: plain forward passes.
  auto cache = e->new_cache();
  ASSERT_TRUE(cache.ok());
  auto sampler = sample::Sampler::create(static_cast<int32_t>(v), o.sampling);
  ASSERT_TRUE(sampler.ok());
  std::vector<float> logits(v), probs(v);
  double chi2 = 0;
  int dof = 0;
  for (const auto& [first, seconds] : counts) {
    int n = 0;
    for (const auto& [tok, c] : seconds) n += c;
    if (n < 40) continue;  // too few runs for the chi-square approximation
    std::vector<int32_t> ids = p;
    ids.push_back(first);
    (*cache)->clear();
    ASSERT_TRUE(e->model().forward(**cache, {.ids = ids, .logits = logits}).ok());
    sampler->reset(0);
    for (int32_t id : ids) sampler->accept(id);
    ASSERT_TRUE(sampler->probabilities(logits, probs).ok());
    // Bins expected to hold fewer than 5 runs are pooled (the chi-square approximation needs ~5).
    double rest_expected = 0, rest_observed = 0;
    int bins = 0;
    for (int32_t tok = 0; tok < v; ++tok) {
      const double expected = probs[tok] * n;
      const auto it = seconds.find(tok);
      const int observed = it == seconds.end() ? 0 : it->second;
      if (expected == 0) {
        EXPECT_EQ(observed, 0) << "token " << tok << " outside the main model's top-k";
      } else if (expected < 5) {
        rest_expected += expected;
        rest_observed += observed;
      } else {
        chi2 += (observed - expected) * (observed - expected) / expected;
        ++bins;
      }
    }
    if (rest_expected > 0) {
      chi2 += (rest_observed - rest_expected) * (rest_observed - rest_expected) / rest_expected;
      ++bins;
    }
    dof += bins - 1;
  }
  ASSERT_GT(dof, 5);
  // Wilson-Hilferty: chi2/dof ~ normal with mean 1 - 2/(9 dof) and sd sqrt(2/(9 dof)); z = 4.75 is
  // the 1e-6 upper tail.
  const double s = std::sqrt(2.0 / (9.0 * dof));
  const double bound = dof * std::pow(1.0 - s * s + 4.75 * s, 3.0);
  std::printf("chi2 %.1f with %d degrees of freedom (bound %.1f); acceptance %.2f\n", chi2, dof,
              bound, double(accepted) / double(drafted));
  EXPECT_LT(chi2, bound);
}

// auto: the first generation times rounds against plain steps and keeps the faster; either way
// the output is the plain output (greedy, scalar kernels), and the choice is reported.
TEST(Speculative, AutoMeasuresAndChooses) {
  std::unique_ptr<Engine> e = tiny(kernels::Isa::kScalar, 256);
  ASSERT_NE(e, nullptr);
  const std::vector<int32_t> p = prompt_ids(*e, "ROMEO:\n");
  auto plain = Generator::create(*e, greedy(80, SpecMode::kOff));
  GenerateOptions ao = greedy(80, SpecMode::kAuto);
  ao.spec.probe_rounds = 4;
  auto aut = Generator::create(*e, ao);
  ASSERT_TRUE(plain.ok() && aut.ok());
  const GenerationStats a = generate(**plain, p), b = generate(**aut, p);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_GT(b.probe_plain_tokens_per_s, 0.0);
  EXPECT_GT(b.probe_spec_tokens_per_s, 0.0);
  EXPECT_NE(b.summary().find("auto: plain"), std::string::npos) << b.summary();
  // A second prompt continues in the mode chosen, still equal to plain.
  std::vector<int32_t> next = (*aut)->history();
  next.push_back(p[1]);
  EXPECT_EQ(generate(**plain, next).ids, generate(**aut, next).ids);
}

// MtpPrefill::kWindow runs the (window-only) MTP block on the last window of a long prompt only;
// the drafts, the accepted tokens and, after the first round, every byte of the cache equal those
// of running it on the whole prompt. 300 tokens = 2.3 windows of 128, then a chat turn of 200 more.
TEST(Speculative, MtpPrefillOfTheLastWindowGivesTheSameDrafts) {
  std::unique_ptr<Engine> e = tiny(kernels::Isa::kScalar, 1024);
  ASSERT_NE(e, nullptr);
  const int64_t v = e->config().vocab_size;
  ASSERT_EQ(e->config().compress_ratio(e->config().n_layers), 0);
  std::mt19937 rng(9);
  auto tokens = [&](int n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(v));
    return ids;
  };
  struct Run {
    std::unique_ptr<Speculator> spec;
    std::unique_ptr<kv::V4SequenceCache> cache;
    sample::Sampler sampler;
    std::vector<float> logits;
    int32_t tok = 0;
  };
  auto make = [&]() -> Run {
    auto s = Speculator::create(e->model(), 2);
    auto c = e->new_cache();
    auto smp = sample::Sampler::create(static_cast<int32_t>(v), {.temperature = 0});
    EXPECT_TRUE(s.ok() && c.ok() && smp.ok());
    return Run{std::move(*s), std::move(*c), std::move(*smp), std::vector<float>(v), 0};
  };
  Run a = make(), b = make();
  for (const std::vector<int32_t>& turn : {tokens(300), tokens(200)}) {
    ASSERT_TRUE(a.spec->prefill(*a.cache, turn, a.logits, Speculator::MtpPrefill::kWindow).ok());
    ASSERT_TRUE(b.spec->prefill(*b.cache, turn, b.logits, Speculator::MtpPrefill::kAll).ok());
    EXPECT_TRUE(a.logits == b.logits);
    a.tok = b.tok =
        static_cast<int32_t>(std::max_element(a.logits.begin(), a.logits.end()) - a.logits.begin());
    for (int round = 0; round < 12; ++round) {
      auto oa = a.spec->round(*a.cache, a.tok, a.sampler);
      auto ob = b.spec->round(*b.cache, b.tok, b.sampler);
      ASSERT_TRUE(oa.ok() && ob.ok());
      ASSERT_TRUE(std::equal(oa->begin(), oa->end(), ob->begin(), ob->end())) << round;
      ASSERT_TRUE(a.spec->finish_round(*a.cache, static_cast<int64_t>(oa->size()) - 1).ok());
      ASSERT_TRUE(b.spec->finish_round(*b.cache, static_cast<int64_t>(ob->size()) - 1).ok());
      a.tok = oa->back();
      b.tok = ob->back();
      auto sa = a.cache->snapshot(), sb = b.cache->snapshot();
      ASSERT_TRUE(sa.ok() && sb.ok());
      ASSERT_EQ(sa->parts.size(), sb->parts.size());
      for (size_t i = 0; i < sa->parts.size(); ++i) {
        EXPECT_TRUE(sa->parts[i] == sb->parts[i]) << "round " << round << " part " << i;
      }
    }
    EXPECT_EQ(a.spec->stats().accepted, b.spec->stats().accepted);
    // The next turn extends the sequence: both feed the token they would decode next.
    for (Run* r : {&a, &b}) {
      const int32_t one[1] = {r->tok};
      ASSERT_TRUE(r->spec->prefill(*r->cache, one, r->logits).ok());
    }
  }
}

TEST(Speculative, ClearErrors) {
  std::unique_ptr<Engine> e = tiny(std::nullopt, 64);
  ASSERT_NE(e, nullptr);
  auto bad = Generator::create(*e, greedy(8, SpecMode::kOn, 9));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("1 to 8"), std::string::npos);
  EngineOptions eo;
  eo.model_dir = test_model_dir();
  eo.max_chunk = 2;
  eo.progress = false;
  auto small = Engine::load(eo);
  ASSERT_TRUE(small.ok());
  auto chunk = Generator::create(**small, greedy(8, SpecMode::kOn, 2));
  ASSERT_FALSE(chunk.ok());
  EXPECT_NE(chunk.status().message().find("exceeds the chunk"), std::string::npos);
  // The two phases in order only.
  auto spec = Speculator::create(e->model(), 1);
  auto cache = e->new_cache();
  auto sampler =
      sample::Sampler::create(static_cast<int32_t>(e->config().vocab_size), {.temperature = 0});
  ASSERT_TRUE(spec.ok() && cache.ok() && sampler.ok());
  std::vector<float> logits(e->config().vocab_size);
  const std::vector<int32_t> p = prompt_ids(*e, "ROMEO:");
  EXPECT_FALSE((*spec)->round(**cache, 1, *sampler).ok());  // not prefilled: nothing to draft from
  ASSERT_TRUE((*spec)->prefill(**cache, p, logits).ok());
  EXPECT_FALSE((*spec)->verify(**cache, *sampler).ok());  // no draft yet
  auto drafts = (*spec)->draft(**cache, 1, *sampler);
  ASSERT_TRUE(drafts.ok());
  EXPECT_EQ(drafts->size(), 1u);
  EXPECT_FALSE((*spec)->draft(**cache, 1, *sampler).ok());  // one draft at a time
  auto out = (*spec)->verify(**cache, *sampler);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE((*spec)->finish_round(**cache, static_cast<int64_t>(out->size()) - 1).ok());
  EXPECT_EQ((*cache)->length(), static_cast<int64_t>(p.size() + out->size()));
  // auto where speculation cannot run decodes plainly instead of failing.
  auto plain_auto = Generator::create(**small, greedy(8, SpecMode::kAuto, 2));
  ASSERT_TRUE(plain_auto.ok()) << plain_auto.status().to_string();
  const GenerationStats st = generate(**plain_auto, prompt_ids(**small, "ROMEO:"));
  EXPECT_EQ(st.generated_tokens, 8);
  EXPECT_EQ(st.spec_k, 0);
}

}  // namespace
}  // namespace frugal::engine
