// How the MoE layer uses its ExpertSource: the hints it hands over (exact for hash blocks, all
// hash blocks ahead at once), and on several threads the experts taken a round at a time and run
// one per thread, in single-sequence decode and in batched steps; the logits equal the resident
// model's bit for bit throughout.
#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "stream/embed_rows.h"
#include "stream/expert_cache.h"
#include "stream_test_util.h"

namespace frugal::stream {
namespace {

using namespace stream_test;

// Kernels on a pool of two threads (the MoE layer's experts one per thread), made once.
const kernels::Kernels& two_thread_kernels() {
  static std::unique_ptr<ThreadPool> pool = [] {
    auto p = ThreadPool::create({.n_threads = 2});
    EXPECT_TRUE(p.ok()) << p.status().to_string();
    return std::move(*p);
  }();
  static kernels::Kernels k = [] {
    auto r = kernels::Kernels::create({.pool = pool.get()});
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return std::move(*r);
  }();
  return k;
}

// On two threads a decode step takes its experts from the cache a pair at a time when both are in
// memory and runs them one per thread (moe.cpp), as the resident pass does; the logits stay those
// of the one-thread resident model bit for bit (a matmul row is the same sums on any thread), with
// evictions and prefetches, and with a source that hands every expert over at once.
TEST(ExpertCache, StreamedExpertsOnePerThreadBitForBit) {
  auto resident = load(tiny_dir(), false);
  ASSERT_NE(resident, nullptr);
  const std::vector<float> want = run(*resident, 20, 16);
  v4::LoadOptions lo;
  lo.stream_experts = true;
  auto m = v4::Model::load(tiny_dir(), two_thread_kernels(), lo,
                           {.max_chunk = 16, .max_seq_len = 512});
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const int64_t total = (*m)->config().n_blocks() * (*m)->config().n_routed_experts;
  for (int64_t slots : {int64_t{4}, total}) {
    auto c = make_cache(**m, slots);
    ASSERT_NE(c, nullptr);
    (*m)->set_expert_source(c.get());
    EXPECT_TRUE(same_bits(run(**m, 20, 16), want)) << slots << " slots";
    // Run again with every slot: all the experts of the run are in memory now, so each decode
    // layer takes its two as a round. (With 4 slots, how many rounds there are depends on when
    // the reads complete; the bits do not.)
    if (slots == total) {
      const int64_t warm = (*m)->parallel_moe_rounds();
      EXPECT_TRUE(same_bits(run(**m, 20, 16), want));
      EXPECT_GE((*m)->parallel_moe_rounds() - warm, 16 * (*m)->config().n_layers);
    }
    (*m)->set_expert_source(nullptr);
  }
  RecordingSource rec(resident->weights());
  (*m)->set_expert_source(&rec);
  const int64_t rounds = (*m)->parallel_moe_rounds();
  EXPECT_TRUE(same_bits(run(**m, 20, 16), want));
  EXPECT_GT((*m)->parallel_moe_rounds(), rounds);
  (*m)->set_expert_source(nullptr);
}

// The server's step under a budget: several sequences in one forward_batch (mixed prefill
// chunks and decode tokens, so experts get one row or several), streamed through 4 slots and
// through all of them on two threads, the embedding read by rows, equal the resident model's
// batched steps bit for bit.
TEST(ExpertCache, BatchedStepsStreamedEqualResident) {
  const kernels::Kernels& k = two_thread_kernels();
  const v4::ModelOptions o = {.max_chunk = 16, .max_seq_len = 256, .max_batch = 3};
  v4::LoadOptions streamed;
  streamed.stream_experts = true;
  streamed.stream_embed = true;
  auto resident = v4::Model::load(tiny_dir(), k, {}, o);
  auto m = v4::Model::load(tiny_dir(), k, streamed, o);
  ASSERT_TRUE(resident.ok() && m.ok());
  auto rows = EmbedRows::create((*m)->weights(), true);
  ASSERT_TRUE(rows.ok()) << rows.status().to_string();
  (*m)->set_embed_source(rows->get());
  // Tokens per sequence per step (0: the sequence sits the step out).
  const std::vector<std::array<int, 3>> steps = {{5, 3, 0}, {1, 1, 6}, {1, 1, 1}, {0, 4, 1},
                                                 {1, 1, 1}, {1, 1, 1}, {2, 1, 1}};
  // Every step's last-position logits of every sequence, in order.
  auto run_steps = [&](v4::Model& model) {
    std::vector<std::unique_ptr<kv::V4SequenceCache>> caches;
    for (int q = 0; q < 3; ++q) caches.push_back(new_cache(model, kv::CacheFormat::kFp8));
    std::mt19937 rng(5);
    const int64_t v = model.config().vocab_size;
    std::vector<float> all;
    for (const auto& step : steps) {
      std::vector<std::vector<int32_t>> ids(3);
      std::vector<std::vector<float>> logits(3);
      std::vector<v4::BatchEntry> entries;
      for (int q = 0; q < 3; ++q) {
        if (step[q] == 0) continue;
        for (int t = 0; t < step[q]; ++t) ids[q].push_back(static_cast<int32_t>(rng() % v));
        logits[q].assign(static_cast<size_t>(v), 0.0f);
        entries.push_back({.cache = caches[q].get(), .ids = ids[q], .logits = logits[q]});
      }
      const Status st = model.forward_batch(entries);
      EXPECT_TRUE(st.ok()) << st.to_string();
      for (const auto& l : logits) all.insert(all.end(), l.begin(), l.end());
    }
    return all;
  };
  const std::vector<float> want = run_steps(**resident);
  const int64_t total = (*m)->config().n_blocks() * (*m)->config().n_routed_experts;
  for (int64_t slots : {int64_t{4}, total}) {
    auto c = make_cache(**m, slots);
    ASSERT_NE(c, nullptr);
    (*m)->set_expert_source(c.get());
    EXPECT_TRUE(same_bits(run_steps(**m), want)) << slots << " slots";
    EXPECT_GT(c->stats().reads, 0u);
    if (slots == total) {  // again, every expert in memory: the 3-token steps run rounds
      const int64_t warm = (*m)->parallel_moe_rounds();
      EXPECT_TRUE(same_bits(run_steps(**m), want));
      EXPECT_GT((*m)->parallel_moe_rounds(), warm);
    }
    (*m)->set_expert_source(nullptr);
  }
}

TEST(ExpertCache, HashLayerHintsAreExact) {
  // The block after a hash layer routes by token id, so the guess the layer before it hands over
  // is exactly what it then asks for, at every step; a bias-routed block's guess is a guess. The
  // recording source serves the resident model's experts, so the logits must not change either.
  auto resident = load(tiny_dir(), false);
  ASSERT_NE(resident, nullptr);
  auto m = load(tiny_dir(), true);
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->config().n_hash_layers, 2);  // blocks 0 and 1
  RecordingSource rec(resident->weights());
  m->set_expert_source(&rec);
  EXPECT_TRUE(same_bits(run(*m, 5, 6), run(*resident, 5, 6)));
  m->set_expert_source(nullptr);
  ASSERT_EQ(rec.guessed_[1].size(), rec.asked_[1].size());
  ASSERT_EQ(rec.asked_[1].size(), 7u);  // the prompt's chunk, then 6 decode steps
  for (size_t i = 0; i < rec.asked_[1].size(); ++i) {
    EXPECT_EQ(rec.guessed_[1][i], rec.asked_[1][i]) << "forward " << i;
  }
  // The first block routes by hash too: each forward hints it before it runs.
  ASSERT_EQ(rec.guessed_[0].size(), rec.asked_[0].size());
  for (size_t i = 0; i < rec.asked_[0].size(); ++i) {
    EXPECT_EQ(rec.guessed_[0][i], rec.asked_[0][i]) << "forward " << i;
  }
  EXPECT_EQ(rec.guessed_[5].size(), rec.asked_[5].size());  // every later block is guessed
}

TEST(ExpertCache, HashBlocksAreAllHintedAtOnce) {
  // Blocks 0-2 route by token id: each forward hints block 0 before it runs (its reads start
  // behind its attention), and block 0's layer hints blocks 1 and 2 together (exact), so block
  // 2's reads can start before block 1 runs; block 3 (bias-routed) is guessed by block 2.
  auto cfg = v4::load_config(v4::testing::fixture_dir() + "/config.json");
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  ASSERT_EQ(cfg->n_layers, 4);
  cfg->n_hash_layers = 3;
  test::ScopedTempDir tmp("stream-hash3");
  const std::string dir = tmp.file("hash3");
  ASSERT_TRUE(v4::write_synth_checkpoint(*cfg, dir, {.seed = 3}).ok());
  auto resident = load(dir, false, 8);
  ASSERT_NE(resident, nullptr);
  auto m = load(dir, true, 8);
  ASSERT_NE(m, nullptr);
  RecordingSource rec(resident->weights());
  m->set_expert_source(&rec);
  EXPECT_TRUE(same_bits(run(*m, 5, 4), run(*resident, 5, 4)));
  m->set_expert_source(nullptr);
  for (int32_t b : {0, 1, 2}) {
    ASSERT_EQ(rec.asked_[b].size(), 5u) << b;  // the prompt's chunk, then 4 decode steps
    for (size_t i = 0; i < rec.asked_[b].size(); ++i) {
      // block 2: hinted by block 0, then again by block 1; all exact
      const size_t per = b == 2 ? 2 : 1;
      ASSERT_EQ(rec.guessed_[b].size(), per * rec.asked_[b].size()) << b;
      for (size_t k = 0; k < per; ++k) {
        EXPECT_EQ(rec.guessed_[b][per * i + k], rec.asked_[b][i]) << "block " << b << " fwd " << i;
      }
    }
  }
  // Within each forward: exact hint of 0, begin 0, exact hints of 1 and 2, begin 1, exact hint of
  // 2, begin 2, a guess for 3 (bias-routed), begin 3.
  const std::vector<std::pair<char, int32_t>> step = {
      {'x', 0}, {'b', 0}, {'x', 1}, {'x', 2}, {'b', 1}, {'x', 2}, {'b', 2}, {'h', 3}, {'b', 3}};
  ASSERT_EQ(rec.events_.size(), 5 * step.size());
  for (size_t i = 0; i < rec.events_.size(); ++i) {
    EXPECT_EQ(rec.events_[i], step[i % step.size()]) << i;
  }
}

}  // namespace
}  // namespace frugal::stream
