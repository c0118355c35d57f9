// Sampler statistics with fixed seeds, truncation sets, penalty formulas, reproducibility and
// allocation-free steps.
//
// Chi-square bound: for N draws from a categorical distribution with d + 1 outcomes the statistic
// X^2 = sum (O_i - N p_i)^2 / (N p_i) is asymptotically chi-square with d degrees of freedom
// (every N p_i here is > 1000, far above the usual N p_i >= 5 rule). We fail when X^2 exceeds the
// 0.9999 quantile of chi-square(d) (d=2: 18.42, d=4: 23.51, d=7: 29.88), so a correct sampler
// would fail for at most 1 in 10^4 seeds; the seeds are fixed, so the test is deterministic. Each
// test also checks the bound has power: the counts are compared with a plausible wrong
// distribution (temperature ignored, or truncation ignored) and must give X^2 > 500.
#include "sample/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <numeric>
#include <random>
#include <vector>

// Counting allocator: lets a test assert that sample() and accept() never allocate.
namespace {
std::atomic<long> g_allocs{0};
}  // namespace
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace frugal::sample {
namespace {

std::vector<double> softmax(const std::vector<float>& l, double t) {
  const double m = *std::max_element(l.begin(), l.end());
  std::vector<double> p(l.size());
  double s = 0;
  for (size_t i = 0; i < l.size(); ++i) s += p[i] = std::exp((l[i] - m) / t);
  for (double& v : p) v /= s;
  return p;
}

std::vector<long> draw(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<long> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    auto t = s.sample(logits);
    EXPECT_TRUE(t.ok());
    ++counts[*t];
  }
  return counts;
}

// X^2 over the outcomes with p > 0; an outcome seen with p == 0 makes it infinite.
double chi_square(const std::vector<long>& counts, const std::vector<double>& p, int n) {
  double x2 = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) {
      if (counts[i] > 0) return INFINITY;
      continue;
    }
    const double e = n * p[i];
    x2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return x2;
}

const std::vector<float> kLogits = {2.0f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 1.5f, 0.2f};

TEST(Sampler, TemperatureMatchesSoftmax) {
  constexpr int kN = 200000;
  auto s = Sampler::create(8, {.temperature = 0.7f, .seed = 1234});
  ASSERT_TRUE(s.ok());
  const auto counts = draw(*s, kLogits, kN);
  EXPECT_LT(chi_square(counts, softmax(kLogits, 0.7), kN), 29.88);
  EXPECT_GT(chi_square(counts, softmax(kLogits, 1.0), kN), 500);  // power: T ignored
}

TEST(Sampler, TopKKeepsOnlyTheKLargest) {
  constexpr int kN = 100000;
  auto s = Sampler::create(8, {.temperature = 1.0f, .top_k = 3, .seed = 99});
  ASSERT_TRUE(s.ok());
  const auto counts = draw(*s, kLogits, kN);
  // Top 3 logits: ids 0 (2.0), 6 (1.5), 1 (1.0).
  std::vector<double> p(8, 0.0);
  const double z = std::exp(2.0) + std::exp(1.5) + std::exp(1.0);
  p[0] = std::exp(2.0) / z;
  p[6] = std::exp(1.5) / z;
  p[1] = std::exp(1.0) / z;
  EXPECT_LT(chi_square(counts, p, kN), 18.42);  // infinite if an excluded id appears
  EXPECT_GT(chi_square(counts, softmax(kLogits, 1.0), kN), 500);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  constexpr int kN = 100000;
  const auto full = softmax(kLogits, 1.0);
  // Nucleus for 0.7, from the sorted probabilities computed here.
  std::vector<int> order(8);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return full[a] > full[b]; });
  std::vector<double> p(8, 0.0);
  double cum = 0;
  for (int id : order) {
    if (cum >= 0.7) break;
    cum += full[id];
    p[id] = full[id];
  }
  for (double& v : p) v /= cum;
  const int kept = int(std::count_if(p.begin(), p.end(), [](double v) { return v > 0; }));
  ASSERT_EQ(kept, 3);  // p = .380, .231, .140, ...: .611 < 0.7 <= .751
  auto s = Sampler::create(8, {.temperature = 1.0f, .top_p = 0.7f, .seed = 5});
  ASSERT_TRUE(s.ok());
  const auto counts = draw(*s, kLogits, kN);
  EXPECT_LT(chi_square(counts, p, kN), 18.42);  // d = kept - 1 = 2
  EXPECT_GT(chi_square(counts, full, kN), 500);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  constexpr int kN = 100000;
  const auto full = softmax(kLogits, 1.0);
  const double pmax = *std::max_element(full.begin(), full.end());
  std::vector<double> p(8, 0.0);
  double z = 0;
  for (int i = 0; i < 8; ++i) {
    if (full[i] >= 0.3 * pmax) z += p[i] = full[i];
  }
  for (double& v : p) v /= z;
  auto s = Sampler::create(8, {.temperature = 1.0f, .min_p = 0.3f, .seed = 8});
  ASSERT_TRUE(s.ok());
  const auto counts = draw(*s, kLogits, kN);
  EXPECT_LT(chi_square(counts, p, kN), 29.88);
  for (int i = 0; i < 8; ++i) {
    if (p[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "id " << i;
    }
  }
}

TEST(Sampler, TruncationsNeverEmitExcludedTokensOnALargeVocab) {
  constexpr int kV = 129280;
  std::mt19937 rng(17);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> logits(kV);
  for (float& v : logits) v = nd(rng);
  std::vector<int32_t> order(kV);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  const auto p = softmax(logits, 0.8);
  std::vector<bool> in_nucleus(kV, false);
  double cum = 0;
  for (int id : order) {
    if (cum >= 0.9) break;
    cum += p[id];
    in_nucleus[id] = true;
  }
  auto s = Sampler::create(kV, {.temperature = 0.8f, .top_k = 1000, .top_p = 0.9f, .seed = 3});
  ASSERT_TRUE(s.ok());
  std::vector<bool> in_top_k(kV, false);
  for (int k = 0; k < 1000; ++k) in_top_k[order[k]] = true;
  for (int i = 0; i < 200; ++i) {
    const int32_t t = *s->sample(logits);
    ASSERT_TRUE(in_top_k[t] && in_nucleus[t]) << "token " << t;
  }
  // top-p alone goes through the bucketed nucleus ordering instead of the sorted top-k list.
  auto only_p = Sampler::create(kV, {.temperature = 0.8f, .top_p = 0.9f, .seed = 4});
  ASSERT_TRUE(only_p.ok());
  int distinct = 0;
  std::vector<bool> seen(kV, false);
  for (int i = 0; i < 200; ++i) {
    const int32_t t = *only_p->sample(logits);
    ASSERT_TRUE(in_nucleus[t]) << "token " << t;
    distinct += !seen[t];
    seen[t] = true;
  }
  EXPECT_GT(distinct, 50);  // the nucleus is wide here; the draw must not collapse to a few ids
}

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  auto s = Sampler::create(5, {.temperature = 0.0f});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s->sample(std::vector<float>{0.f, 3.f, 1.f, 3.f, -2.f}), 1);
}

TEST(Sampler, PenaltiesFollowTheFormulas) {
  SamplerOptions o{.repetition_penalty = 1.5f,
                   .presence_penalty = 0.25f,
                   .frequency_penalty = 0.5f,
                   .penalty_window = 4,
                   .logit_bias = {{3, -1.0f}}};
  auto s = Sampler::create(6, o);
  ASSERT_TRUE(s.ok());
  for (int32_t t : {5, 0, 1, 1, 2}) s->accept(t);  // window of 4: 0, 1, 1, 2 (5 left)
  const std::vector<float> in = {2.0f, -2.0f, 0.0f, 1.0f, 3.0f, 4.0f};
  std::vector<float> out(6);
  s->adjusted_logits(in, out);
  EXPECT_FLOAT_EQ(out[0], 2.0f / 1.5f - 0.5f * 1 - 0.25f);
  EXPECT_FLOAT_EQ(out[1], -2.0f * 1.5f - 0.5f * 2 - 0.25f);
  EXPECT_FLOAT_EQ(out[2], 0.0f - 0.5f * 1 - 0.25f);
  EXPECT_FLOAT_EQ(out[3], 1.0f - 1.0f);  // bias only
  EXPECT_FLOAT_EQ(out[4], 3.0f);         // never seen
  EXPECT_FLOAT_EQ(out[5], 4.0f);         // slid out of the window
}

TEST(Sampler, BiasCanBanAndForce) {
  auto s = Sampler::create(
      8, {.temperature = 1.0f, .logit_bias = {{0, -INFINITY}, {6, -INFINITY}}, .seed = 1});
  ASSERT_TRUE(s.ok());
  const auto counts = draw(*s, kLogits, 20000);
  EXPECT_EQ(counts[0] + counts[6], 0);
  auto all_banned = Sampler::create(2, {.logit_bias = {{0, -INFINITY}, {1, -INFINITY}}});
  EXPECT_FALSE(all_banned->sample(std::vector<float>{1.f, 2.f}).ok());
}

TEST(Sampler, SameSeedSameTokens) {
  auto a = Sampler::create(8, {.temperature = 1.2f, .top_p = 0.95f, .seed = 42});
  auto b = Sampler::create(8, {.temperature = 1.2f, .top_p = 0.95f, .seed = 42});
  auto c = Sampler::create(8, {.temperature = 1.2f, .top_p = 0.95f, .seed = 43});
  std::vector<int32_t> ta, tb, tc;
  for (int i = 0; i < 200; ++i) {
    ta.push_back(*a->sample(kLogits));
    tb.push_back(*b->sample(kLogits));
    tc.push_back(*c->sample(kLogits));
  }
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
  a->reset(42);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(*a->sample(kLogits), ta[i]);
}

TEST(Sampler, NoAllocationPerToken) {
  constexpr int kV = 4096;
  std::vector<float> logits(kV);
  for (int i = 0; i < kV; ++i) logits[i] = float((i * 7919) % 1000) / 100.0f;
  auto s = Sampler::create(kV, {.temperature = 0.9f,
                                .top_k = 50,
                                .top_p = 0.9f,
                                .min_p = 0.01f,
                                .repetition_penalty = 1.1f,
                                .presence_penalty = 0.1f,
                                .frequency_penalty = 0.1f,
                                .logit_bias = {{3, 1.0f}}});
  ASSERT_TRUE(s.ok());
  const long before = g_allocs.load();
  for (int i = 0; i < 500; ++i) {
    auto t = s->sample(logits);
    if (!t.ok()) break;
    s->accept(*t);
  }
  EXPECT_EQ(g_allocs.load() - before, 0);
}

TEST(Sampler, OptionsAreChecked) {
  EXPECT_NE(Sampler::create(8, {.top_p = 1.5f}).status().message().find("top_p"),
            std::string::npos);
  EXPECT_NE(Sampler::create(8, {.temperature = -1.f}).status().message().find("temperature"),
            std::string::npos);
  EXPECT_NE(Sampler::create(8, {.logit_bias = {{8, 1.f}}}).status().message().find("logit_bias"),
            std::string::npos);
  EXPECT_FALSE(Sampler::create(8, {.min_p = 2.f}).ok());
  EXPECT_FALSE(Sampler::create(8, {.repetition_penalty = 0.f}).ok());
  EXPECT_FALSE(Sampler::create(0, {}).ok());
  auto s = Sampler::create(8, {});
  EXPECT_FALSE(s->sample(std::vector<float>(7, 0.f)).ok());
}

}  // namespace
}  // namespace frugal::sample
