// Model::forward_batch on the synthetic checkpoint (window 8, ratios 0/4/8/4): sequences of
// different lengths, prefill chunks mixed with decode tokens, equal each sequence run alone. With
// the scalar kernels bit for bit (logits and every cache byte), since they give the same bits
// whatever the number of rows in a matmul; with the SIMD kernels to summation noise, as the
// decode == prefill tests of forward_test.cpp (a wrong position, window slot or cache would move
// the logits by 0.1-1 of their scale).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "v4_random.h"

namespace frugal::v4 {
namespace {

using namespace frugal::v4::testing;

constexpr int kSeqs = 3;

std::unique_ptr<Model> batch_model(kernels::Isa isa) {
  auto m = Model::load(random_checkpoint(), test_kernels(isa), {},
                       {.max_chunk = 16, .max_seq_len = 256, .max_batch = kSeqs});
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return m.ok() ? std::move(*m) : nullptr;
}

// Steps of (tokens per sequence; 0 = not in this step) over 3 sequences: prefill chunks of
// different sizes next to single decode tokens, sequences joining late and sitting steps out,
// then decode until each has crossed several windows of 8 and compression blocks of 4 and 8.
std::vector<std::array<int, kSeqs>> schedule() {
  std::vector<std::array<int, kSeqs>> steps = {{5, 0, 0}, {1, 7, 0}, {1, 1, 3},
                                               {0, 4, 1}, {2, 1, 6}, {1, 0, 1}};
  for (int i = 0; i < 30; ++i) steps.push_back({1, 1, 1});
  return steps;
}

TEST(V4Batch, EachSequenceEqualsItsOwnForward) {
  for (kernels::Isa isa : kernels::supported_isas()) {
    auto m = batch_model(isa);
    ASSERT_NE(m, nullptr);
    const int64_t v = m->config().vocab_size;
    std::mt19937 rng(21);
    std::vector<std::unique_ptr<kv::V4SequenceCache>> batched, alone;
    for (int q = 0; q < kSeqs; ++q) {
      batched.push_back(new_cache(*m, kv::CacheFormat::kFp8));
      alone.push_back(new_cache(*m, kv::CacheFormat::kFp8));
    }
    double worst = 0;
    int step_no = 0;
    for (const auto& step : schedule()) {
      std::vector<std::vector<int32_t>> ids(kSeqs);
      std::vector<std::vector<float>> got(kSeqs), want(kSeqs);
      std::vector<BatchEntry> entries;
      for (int q = 0; q < kSeqs; ++q) {
        if (step[q] == 0) continue;
        for (int t = 0; t < step[q]; ++t) ids[q].push_back(static_cast<int32_t>(rng() % v));
        // Sequence 1 wants the logits of every position, the others the last one.
        const LogitsMode mode = q == 1 ? LogitsMode::kAll : LogitsMode::kLast;
        const size_t rows = mode == LogitsMode::kAll ? ids[q].size() : 1;
        got[q].assign(rows * v, 0.0f);
        want[q].assign(rows * v, 0.0f);
        entries.push_back(
            {.cache = batched[q].get(), .ids = ids[q], .logits_mode = mode, .logits = got[q]});
        const Status s =
            m->forward(*alone[q], {.ids = ids[q], .logits_mode = mode, .logits = want[q]});
        ASSERT_TRUE(s.ok()) << s.to_string();
      }
      const Status s = m->forward_batch(entries);
      ASSERT_TRUE(s.ok()) << s.to_string();
      for (int q = 0; q < kSeqs; ++q) {
        if (step[q] == 0) continue;
        const std::string what = std::string(kernels::isa_name(isa)) + " step " +
                                 std::to_string(step_no) + " sequence " + std::to_string(q);
        if (isa == kernels::Isa::kScalar) {
          ASSERT_TRUE(got[q] == want[q]) << what;
        } else {
          worst = std::max(worst, rel_diff(want[q], got[q]));
          ASSERT_LE(rel_diff(want[q], got[q]), 1e-2) << what;
        }
        EXPECT_EQ(batched[q]->length(), alone[q]->length());
      }
      ++step_no;
    }
    if (isa == kernels::Isa::kScalar) {  // every cache byte too
      for (int q = 0; q < kSeqs; ++q) {
        auto a = batched[q]->snapshot(), b = alone[q]->snapshot();
        ASSERT_TRUE(a.ok() && b.ok());
        for (size_t i = 0; i < a->parts.size(); ++i) EXPECT_TRUE(a->parts[i] == b->parts[i]) << i;
      }
    } else {
      std::printf("%s: max |alone - batched| = %.2e of the logit scale\n",
                  std::string(kernels::isa_name(isa)).c_str(), worst);
    }
    EXPECT_GT(batched[0]->length(), 3 * 8);
  }
}

// A small pass on several threads runs its routed experts one expert per thread (moe.cpp); the
// logits and caches equal those of the same steps on one thread, where each expert's matmuls run
// in turn, bit for bit on every ISA: the experts' outputs are added in the same order, and a
// matmul row is the same sums whichever thread computes it (kernels' MatmulTest.ThreadedRowSplit*).
// The checkpoint has 3 experts per token here (the fixture's 2 would add every token's two expert
// outputs in either order to the same bits).
TEST(V4Batch, ExpertsOnePerThreadEqualOneThread) {
  auto cfg = load_config(fixture_dir() + "/config.json");
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  cfg->n_activated_experts = 3;
  const std::string dir = frugal::test::process_temp_dir().file("v4-random-top3");
  ASSERT_TRUE(write_synth_checkpoint(*cfg, dir, {.seed = 3}).ok());
  auto pool = ThreadPool::create({.n_threads = 2});
  ASSERT_TRUE(pool.ok()) << pool.status().to_string();
  for (kernels::Isa isa : kernels::supported_isas()) {
    auto k = kernels::Kernels::create({.isa = isa, .pool = pool->get()});
    ASSERT_TRUE(k.ok()) << k.status().to_string();
    const ModelOptions o = {.max_chunk = 16, .max_seq_len = 256, .max_batch = kSeqs};
    auto two = Model::load(dir, *k, {}, o);
    auto one = Model::load(dir, test_kernels(isa), {}, o);
    ASSERT_TRUE(two.ok() && one.ok());
    const int64_t v = (*two)->config().vocab_size;
    std::mt19937 rng(22);
    std::vector<std::unique_ptr<kv::V4SequenceCache>> a, b;
    for (int q = 0; q < kSeqs; ++q) {
      a.push_back(new_cache(**two, kv::CacheFormat::kFp8));
      b.push_back(new_cache(**one, kv::CacheFormat::kFp8));
    }
    int step_no = 0;
    for (const auto& step : schedule()) {
      std::vector<std::vector<int32_t>> ids(kSeqs);
      std::vector<std::vector<float>> got(kSeqs), want(kSeqs);
      std::vector<BatchEntry> ea, eb;
      for (int q = 0; q < kSeqs; ++q) {
        if (step[q] == 0) continue;
        for (int t = 0; t < step[q]; ++t) ids[q].push_back(static_cast<int32_t>(rng() % v));
        got[q].assign(v, 0.0f);
        want[q].assign(v, 0.0f);
        ea.push_back({.cache = a[q].get(), .ids = ids[q], .logits = got[q]});
        eb.push_back({.cache = b[q].get(), .ids = ids[q], .logits = want[q]});
      }
      ASSERT_TRUE((*two)->forward_batch(ea).ok());
      ASSERT_TRUE((*one)->forward_batch(eb).ok());
      for (int q = 0; q < kSeqs; ++q) {
        ASSERT_TRUE(got[q] == want[q]) << kernels::isa_name(isa) << " step " << step_no
                                       << " sequence " << q;
      }
      ++step_no;
    }
    for (int q = 0; q < kSeqs; ++q) {
      auto sa = a[q]->snapshot(), sb = b[q]->snapshot();
      ASSERT_TRUE(sa.ok() && sb.ok());
      for (size_t i = 0; i < sa->parts.size(); ++i) EXPECT_TRUE(sa->parts[i] == sb->parts[i]) << i;
    }
    // Every step ran that way on two threads (4 MoE layers each), none on one.
    EXPECT_EQ((*two)->parallel_moe_passes(), step_no * (*two)->config().n_layers);
    EXPECT_EQ((*one)->parallel_moe_passes(), 0);
  }
}

TEST(V4Batch, ChecksNameTheSequenceAndTheLimit) {
  auto m = batch_model(kernels::best_isa());
  ASSERT_NE(m, nullptr);
  const int64_t v = m->config().vocab_size;
  auto a = new_cache(*m, kv::CacheFormat::kFp8), b = new_cache(*m, kv::CacheFormat::kFp8);
  std::vector<float> la(v), lb(v);
  const std::vector<int32_t> one = {1}, many(15, 2), bad = {1, static_cast<int32_t>(v)};
  auto error = [&](std::vector<BatchEntry> e) {
    const Status s = m->forward_batch(e);
    EXPECT_FALSE(s.ok());
    return s.message();
  };
  EXPECT_NE(error({}).find("no sequences"), std::string::npos);
  EXPECT_NE(error({{.cache = a.get(), .ids = one, .logits = la},
                   {.cache = a.get(), .ids = one, .logits = lb}})
                .find("sequence 1: its cache is in the batch twice"),
            std::string::npos);
  EXPECT_NE(error({{.cache = a.get(), .ids = many, .logits = la},
                   {.cache = b.get(), .ids = std::vector<int32_t>(2, 1), .logits = lb}})
                .find("17 tokens in all; the chunk holds 16"),
            std::string::npos);
  EXPECT_NE(error({{.cache = b.get(), .ids = bad, .logits = lb}}).find("sequence 0: ids[1]"),
            std::string::npos);
  std::vector<std::unique_ptr<kv::V4SequenceCache>> four;
  std::vector<std::vector<float>> logits(4, std::vector<float>(v));
  std::vector<BatchEntry> entries;
  for (int q = 0; q < 4; ++q) {
    four.push_back(new_cache(*m, kv::CacheFormat::kFp8));
    entries.push_back({.cache = four.back().get(), .ids = one, .logits = logits[q]});
  }
  EXPECT_NE(error(entries).find("4 sequences want their last logits"), std::string::npos);
  EXPECT_EQ(a->length(), 0);  // nothing ran
}

}  // namespace
}  // namespace frugal::v4
