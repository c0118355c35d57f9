// The expert cache (src/stream): a model whose routed experts stream through a few slots gives
// the logits of the resident model bit for bit (same kernels on the same bytes; the MoE layer
// sums every token's experts in ascending id whatever order they arrive in), on the shipped
// tiny-v4 and on the synthetic v4-random checkpoint, with evictions forced by slot counts down to
// one; and the faults a file on disk can cause are errors naming the file.
#include "stream/expert_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "../v4/v4_random.h"
#include "core/thread_pool.h"

namespace frugal::stream {
namespace {

using v4::testing::new_cache;
using v4::testing::test_kernels;

std::string tiny_dir() { return std::string(FRUGAL_SOURCE_DIR) + "/models/tiny-v4"; }

std::unique_ptr<v4::Model> load(const std::string& dir, bool streamed, int64_t max_chunk = 16) {
  v4::LoadOptions lo;
  lo.stream_experts = streamed;
  auto m = v4::Model::load(dir, test_kernels(), lo, {.max_chunk = max_chunk, .max_seq_len = 512});
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return m.ok() ? std::move(*m) : nullptr;
}

std::unique_ptr<ExpertCache> make_cache(const v4::Model& m, int64_t slots, bool prefetch = true,
                                        bool direct = true) {
  ExpertCacheOptions o;
  o.slots = slots;
  o.direct_io = direct;
  o.prefetch = prefetch;
  auto c = ExpertCache::create(m.weights(), o);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? std::move(*c) : nullptr;
}

// A prompt of `prompt` tokens (in chunks of the model's max_chunk) and `steps` decode steps fed
// from a fixed random stream; every logit of every step, in order.
std::vector<float> run(v4::Model& m, int prompt, int steps, uint32_t seed = 7) {
  auto cache = new_cache(m, kv::CacheFormat::kFp8);
  const int64_t v = m.config().vocab_size;
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(prompt));
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % v);
  std::vector<float> all, logits(static_cast<size_t>(v));
  Status s = m.forward(*cache, {.ids = ids, .logits = logits});
  EXPECT_TRUE(s.ok()) << s.to_string();
  all.insert(all.end(), logits.begin(), logits.end());
  for (int t = 0; t < steps && s.ok(); ++t) {
    const int32_t id = static_cast<int32_t>(rng() % v);
    s = m.forward(*cache, {.ids = {&id, 1}, .logits = logits});
    EXPECT_TRUE(s.ok()) << s.to_string();
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(ExpertCache, TinyV4StreamedEqualsResidentBitForBit) {
  auto resident = load(tiny_dir(), false);
  ASSERT_NE(resident, nullptr);
  const std::vector<float> want = run(*resident, 40, 24);
  auto m = load(tiny_dir(), true);
  ASSERT_NE(m, nullptr);
  const int64_t total = m->config().n_blocks() * m->config().n_routed_experts;
  // 1 slot: every expert read in turn; 4: the minimum budget's 2 x top-k; all: no eviction.
  for (int64_t slots : {int64_t{1}, int64_t{4}, int64_t{11}, total}) {
    for (bool prefetch : {false, true}) {
      auto c = make_cache(*m, slots, prefetch);
      ASSERT_NE(c, nullptr);
      m->set_expert_source(c.get());
      EXPECT_TRUE(same_bits(run(*m, 40, 24), want)) << slots << " slots, prefetch " << prefetch;
      const ExpertCacheStats st = c->stats();
      EXPECT_EQ(st.hits + st.misses, st.requests);
      EXPECT_GT(st.misses, 0u);
      if (slots < total) {
        EXPECT_GT(st.evictions, 0u) << slots;
      }
      if (prefetch) {
        EXPECT_GT(st.hinted, 0u);
      }
      if (prefetch && slots >= 4) {  // room to prefetch
        EXPECT_GT(st.prefetch_reads, 0u) << slots;
      }
      m->set_expert_source(nullptr);
    }
  }
}

TEST(ExpertCache, SyntheticCheckpointStreamedEqualsResident) {
  const std::string& dir = v4::testing::random_checkpoint();
  auto resident = load(dir, false, 8);
  ASSERT_NE(resident, nullptr);
  const std::vector<float> want = run(*resident, 30, 20);
  auto m = load(dir, true, 8);
  ASSERT_NE(m, nullptr);
  const int64_t topk = m->config().n_activated_experts;
  auto c = make_cache(*m, 2 * topk);
  ASSERT_NE(c, nullptr);
  m->set_expert_source(c.get());
  EXPECT_TRUE(same_bits(run(*m, 30, 20), want));
  EXPECT_GT(c->stats().evictions, 0u);
  m->set_expert_source(nullptr);
}

// An ExpertSource that hands out a resident model's expert weights and records, per block, the
// experts the MoE layer asked for and the experts it guessed for that block beforehand, and the
// order of the calls.
class RecordingSource final : public v4::ExpertSource {
 public:
  explicit RecordingSource(const v4::ModelWeights& w) : w_(w) {}
  Status begin_layer(int32_t block, std::span<const int32_t> experts) override {
    events_.push_back({'b', block});
    block_ = block;
    want_.assign(experts.begin(), experts.end());
    asked_[block].push_back(std::set<int32_t>(experts.begin(), experts.end()));
    return ok_status();
  }
  using v4::ExpertSource::next;
  Result<size_t> next(std::span<v4::HandedExpert> out) override {  // all in memory: any number
    size_t k = 0;
    for (; k < out.size() && !want_.empty(); ++k) {
      const int32_t e = want_.back();
      want_.pop_back();
      out[k] = {e, &w_.blocks[static_cast<size_t>(block_)].ffn.experts[static_cast<size_t>(e)]};
    }
    return k;
  }
  bool wants_hints() const override { return true; }
  void hint(int32_t block, std::span<const int32_t> experts, bool exact) override {
    events_.push_back({exact ? 'x' : 'h', block});
    guessed_[block].push_back(std::set<int32_t>(experts.begin(), experts.end()));
  }
  std::map<int32_t, std::vector<std::set<int32_t>>> asked_, guessed_;
  std::vector<std::pair<char, int32_t>> events_;  // ('b' begin_layer | 'h' hint, block) in order

 private:
  const v4::ModelWeights& w_;
  int32_t block_ = -1;
  std::vector<int32_t> want_;
};

// On two threads a decode step takes its experts from the cache a pair at a time when both are in
// memory and runs them one per thread (moe.cpp), as the resident pass does; the logits stay those
// of the one-thread resident model bit for bit (a matmul row is the same sums on any thread), with
// evictions and prefetches, and with a source that hands every expert over at once.
TEST(ExpertCache, StreamedExpertsOnePerThreadBitForBit) {
  auto resident = load(tiny_dir(), false);
  ASSERT_NE(resident, nullptr);
  const std::vector<float> want = run(*resident, 20, 16);
  auto pool = ThreadPool::create({.n_threads = 2});
  ASSERT_TRUE(pool.ok()) << pool.status().to_string();
  auto k = kernels::Kernels::create({.pool = pool->get()});
  ASSERT_TRUE(k.ok()) << k.status().to_string();
  v4::LoadOptions lo;
  lo.stream_experts = true;
  auto m = v4::Model::load(tiny_dir(), *k, lo, {.max_chunk = 16, .max_seq_len = 512});
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const int64_t total = (*m)->config().n_blocks() * (*m)->config().n_routed_experts;
  for (int64_t slots : {int64_t{4}, total}) {
    auto c = make_cache(**m, slots);
    ASSERT_NE(c, nullptr);
    (*m)->set_expert_source(c.get());
    const int64_t rounds = (*m)->parallel_moe_rounds();
    EXPECT_TRUE(same_bits(run(**m, 20, 16), want)) << slots << " slots";
    EXPECT_GT((*m)->parallel_moe_rounds(), rounds) << slots << " slots";
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
// through all of them on two threads, equal the resident model's batched steps bit for bit.
TEST(ExpertCache, BatchedStepsStreamedEqualResident) {
  auto pool = ThreadPool::create({.n_threads = 2});
  ASSERT_TRUE(pool.ok()) << pool.status().to_string();
  auto k = kernels::Kernels::create({.pool = pool->get()});
  ASSERT_TRUE(k.ok()) << k.status().to_string();
  const v4::ModelOptions o = {.max_chunk = 16, .max_seq_len = 256, .max_batch = 3};
  v4::LoadOptions streamed;
  streamed.stream_experts = true;
  auto resident = v4::Model::load(tiny_dir(), *k, {}, o);
  auto m = v4::Model::load(tiny_dir(), *k, streamed, o);
  ASSERT_TRUE(resident.ok() && m.ok());
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
    EXPECT_GT(c->stats().misses, 0u);
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
  EXPECT_FALSE(rec.guessed_.count(0));                      // nothing guesses the first block
  EXPECT_EQ(rec.guessed_[5].size(), rec.asked_[5].size());  // every later block is guessed
}

TEST(ExpertCache, HashBlocksAreAllHintedAtOnce) {
  // Blocks 0-2 route by token id: block 0's layer hints blocks 1 and 2 together (exact), so
  // block 2's reads can start before block 1 runs; block 3 (bias-routed) is guessed by block 2.
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
  for (int32_t b : {1, 2}) {
    ASSERT_EQ(rec.asked_[b].size(), 5u) << b;  // the prompt's chunk, then 4 decode steps
    for (size_t i = 0; i < rec.asked_[b].size(); ++i) {
      // block 2: hinted by block 0, then again by block 1; both exact
      const size_t per = b == 1 ? 1 : 2;
      ASSERT_EQ(rec.guessed_[b].size(), per * rec.asked_[b].size()) << b;
      for (size_t k = 0; k < per; ++k) {
        EXPECT_EQ(rec.guessed_[b][per * i + k], rec.asked_[b][i]) << "block " << b << " fwd " << i;
      }
    }
  }
  // Within each forward: begin 0, exact hints of 1 and 2, begin 1, exact hint of 2, begin 2, a
  // guess for 3 (bias-routed), begin 3.
  const std::vector<std::pair<char, int32_t>> step = {{'b', 0}, {'x', 1}, {'x', 2}, {'b', 1},
                                                      {'x', 2}, {'b', 2}, {'h', 3}, {'b', 3}};
  ASSERT_EQ(rec.events_.size(), 5 * step.size());
  for (size_t i = 0; i < rec.events_.size(); ++i) {
    EXPECT_EQ(rec.events_[i], step[i % step.size()]) << i;
  }
}

TEST(ExpertCache, BadRequestsLeaveTheCacheUsable) {
  auto resident = load(tiny_dir(), false);
  ASSERT_NE(resident, nullptr);
  auto m = load(tiny_dir(), true);
  ASSERT_NE(m, nullptr);
  auto c = make_cache(*m, 4);
  ASSERT_NE(c, nullptr);
  const int32_t bad[] = {1, 99};
  EXPECT_FALSE(c->begin_layer(0, bad).ok());
  EXPECT_FALSE(c->begin_layer(-1, {}).ok());
  const int32_t half[] = {2, 5};  // a layer left unfinished: the next one starts over
  ASSERT_TRUE(c->begin_layer(1, half).ok());
  const v4::ExpertWeights* w = nullptr;
  ASSERT_TRUE(c->next(&w).ok());
  m->set_expert_source(c.get());
  EXPECT_TRUE(same_bits(run(*m, 12, 4), run(*resident, 12, 4)));
  m->set_expert_source(nullptr);
}

// The eviction and prefetch rules, on a streamed tiny-v4 with 4 slots and prefetch on.
class ExpertCachePolicy : public ::testing::Test {
 protected:
  void SetUp() override {
    m = load(tiny_dir(), true);
    ASSERT_NE(m, nullptr);
    c = make_cache(*m, 4);
    ASSERT_NE(c, nullptr);
  }
  std::unique_ptr<v4::Model> m;
  std::unique_ptr<ExpertCache> c;
};

// One layer of `block` asking for `experts` (ascending), every expert taken.
void use(ExpertCache& c, int32_t block, std::vector<int32_t> experts) {
  ASSERT_TRUE(c.begin_layer(block, experts).ok());
  const v4::ExpertWeights* w = nullptr;
  for (;;) {
    auto e = c.next(&w);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    if (*e < 0) break;
  }
}

TEST_F(ExpertCachePolicy, AGuessDoesNotEvictBusierExpertsAnExactHintDoes) {
  for (int i = 0; i < 5; ++i) {  // four slots, each expert used five times
    use(*c, 2, {0, 1});
    use(*c, 2, {2, 3});
  }
  c->reset_stats();
  const int32_t five[] = {5};
  c->hint(3, five, /*exact=*/false);  // worth less than any slot: recorded, not read
  EXPECT_EQ(c->stats().prefetch_reads, 0u);
  c->hint(3, five, /*exact=*/true);  // will be asked for: read now
  EXPECT_EQ(c->stats().prefetch_reads, 1u);
  use(*c, 3, {5});
  EXPECT_EQ(c->stats().prefetch_used, 1u);
}

TEST_F(ExpertCachePolicy, ADemandReadTakesAPendingPrefetchLast) {
  use(*c, 2, {0, 1});
  use(*c, 2, {2, 3});  // full
  const int32_t five[] = {5};
  c->hint(3, five, /*exact=*/true);  // takes the least used slot; pending, and scored lowest
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // its read done, if it can be
  use(*c, 4, {6});  // a miss: must evict one of block 2's experts, not the pending prefetch
  c->reset_stats();
  use(*c, 3, {5});
  EXPECT_EQ(c->stats().hits, 1u);
  EXPECT_EQ(c->stats().prefetch_used, 1u);
}

TEST_F(ExpertCachePolicy, AnExactHintNotFollowedStopsBeingPending) {
  // A block that asks for other experts than its exact hint named (a forward that stopped before
  // it): the prefetch is dropped if its read has not started, else kept as a plain cached expert,
  // and a demand read may then evict it like any other.
  const int32_t five[] = {5};
  c->hint(3, five, /*exact=*/true);                            // an empty slot: read
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // done, if it can be
  use(*c, 3, {6});
  const uint64_t dropped = c->stats().prefetch_dropped;
  c->reset_stats();
  use(*c, 3, {5});  // cached (or read again when it was dropped), no longer a prefetch
  EXPECT_EQ(c->stats().prefetch_used, 0u);
  EXPECT_EQ(c->stats().hits, dropped == 0 ? 1u : 0u);
}

TEST_F(ExpertCachePolicy, AWrongGuessStaysAPrefetchUntilEvicted) {
  // A router's guess is a guess: one the block did not ask for stays prefetched (used if a later
  // step asks for it), with no priority over other slots for a demand read.
  const int32_t five[] = {5};
  c->hint(3, five, /*exact=*/false);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  use(*c, 3, {6});
  c->reset_stats();
  use(*c, 3, {5});
  EXPECT_EQ(c->stats().hits, 1u);
  EXPECT_EQ(c->stats().prefetch_used, 1u);
}

TEST(ExpertCache, NoSourceIsAClearError) {
  auto m = load(tiny_dir(), true);
  ASSERT_NE(m, nullptr);
  auto cache = new_cache(*m, kv::CacheFormat::kFp8);
  std::vector<float> logits(static_cast<size_t>(m->config().vocab_size));
  const int32_t id = 1;
  const Status s = m->forward(*cache, {.ids = {&id, 1}, .logits = logits});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("set_expert_source"), std::string::npos) << s.to_string();
}

// A copy of tiny-v4 in a folder of the test's own.
std::string copy_tiny(const test::ScopedTempDir& tmp) {
  const std::string dir = tmp.file("tiny");
  std::filesystem::create_directory(dir);
  for (const char* f : {"config.json", "model.safetensors"}) {
    std::filesystem::copy_file(tiny_dir() + "/" + f, dir + "/" + f);
  }
  return dir;
}

// Loads a private copy of tiny-v4 with streamed experts (4 slots, no prefetch), lets `damage`
// change its file on disk, and returns the status of a forward over `n` tokens; the sequence's
// length must not have moved.
Status forward_after(const std::string& tag, int n,
                     const std::function<void(const std::string& file)>& damage,
                     std::string* file_out) {
  test::ScopedTempDir tmp(tag);
  const std::string dir = copy_tiny(tmp);
  auto m = load(dir, true);
  if (m == nullptr) return internal_error("load failed");
  auto c = make_cache(*m, 4, false);
  if (c == nullptr) return internal_error("cache failed");
  m->set_expert_source(c.get());
  *file_out = dir + "/model.safetensors";
  damage(*file_out);
  auto cache = new_cache(*m, kv::CacheFormat::kFp8);
  std::vector<float> logits(static_cast<size_t>(m->config().vocab_size));
  std::vector<int32_t> ids(static_cast<size_t>(n), 3);
  const Status s = m->forward(*cache, {.ids = ids, .logits = logits});
  EXPECT_EQ(cache->length(), 0);
  m->set_expert_source(nullptr);
  return s;
}

TEST(ExpertCache, TruncatedFileIsAnErrorNamingIt) {
  std::string file;
  const Status s = forward_after(
      "stream-trunc", 8,
      [](const std::string& f) {
        ASSERT_EQ(::truncate(f.c_str(), static_cast<off_t>(std::filesystem::file_size(f) / 2)), 0);
      },
      &file);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(file), std::string::npos) << s.to_string();
  EXPECT_NE(s.message().find("changed on disk"), std::string::npos) << s.to_string();
  EXPECT_NE(s.message().find("ffn.experts."), std::string::npos) << s.to_string();  // a tensor
}

TEST(ExpertCache, RewrittenFileIsDetected) {
  std::string file;
  const Status s = forward_after(
      "stream-mtime", 1,
      [](const std::string& f) {
        struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};  // same size, another mtime
        ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), times, 0), 0);
      },
      &file);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("mtime"), std::string::npos) << s.to_string();
}

TEST(ExpertCache, ReplayPerformsTheRecordedReads) {
  // The bench's disk roofline: the reads of a recorded stretch performed again, the same count
  // and bytes as the cache's own statistics, and the record cleared by the replay. Without
  // prefetch every read is a demand read, done before its layer ends, so no read is in flight
  // when the recording stops and the counts must match exactly.
  auto m = load(tiny_dir(), true);
  ASSERT_NE(m, nullptr);
  auto c = make_cache(*m, 4, /*prefetch=*/false);
  ASSERT_NE(c, nullptr);
  m->set_expert_source(c.get());
  run(*m, 8, 2);  // not recorded
  c->reset_stats();
  c->record_reads(true);
  run(*m, 8, 6, 11);
  c->record_reads(false);
  const ExpertCacheStats st = c->stats();
  run(*m, 4, 2, 13);  // not recorded either
  ASSERT_GT(st.reads, 0u);
  auto r = c->replay_reads();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->reads, st.reads);
  EXPECT_EQ(r->bytes, st.bytes_read);
  EXPECT_GT(r->seconds, 0.0);
  EXPECT_GT(r->gbps(), 0.0);
  EXPECT_EQ(r->threads, static_cast<int>(std::min<uint64_t>(8, st.reads)));
  auto again = c->replay_reads();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->reads, 0u);
  EXPECT_EQ(again->bytes, 0u);
  m->set_expert_source(nullptr);
}

TEST(ExpertCache, ReplayOfAChangedFileIsAnErrorNamingIt) {
  test::ScopedTempDir tmp("stream-replay");
  const std::string dir = copy_tiny(tmp);
  auto m = load(dir, true);
  ASSERT_NE(m, nullptr);
  auto c = make_cache(*m, 4, false);
  ASSERT_NE(c, nullptr);
  m->set_expert_source(c.get());
  c->record_reads(true);
  run(*m, 8, 2);
  const std::string file = dir + "/model.safetensors";
  struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), times, 0), 0);
  auto r = c->replay_reads();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(file), std::string::npos) << r.status().to_string();
  EXPECT_NE(r.status().message().find("replayed read"), std::string::npos)
      << r.status().to_string();
  m->set_expert_source(nullptr);
}

TEST(ExpertCache, BufferedReadsGiveTheSameLogits) {
  // Without O_DIRECT (a file system that refuses it, or direct_io off) the same aligned reads go
  // through the page cache and are dropped from it after each read.
  auto resident = load(tiny_dir(), false);
  ASSERT_NE(resident, nullptr);
  auto m = load(tiny_dir(), true);
  ASSERT_NE(m, nullptr);
  auto c = make_cache(*m, 4, true, /*direct=*/false);
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->direct_io());
  m->set_expert_source(c.get());
  EXPECT_TRUE(same_bits(run(*m, 20, 8), run(*resident, 20, 8)));
  m->set_expert_source(nullptr);
}

}  // namespace
}  // namespace frugal::stream
