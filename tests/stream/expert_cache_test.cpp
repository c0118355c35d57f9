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

#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "../v4/v4_random.h"

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
// experts the MoE layer asked for and the experts it guessed for that block one layer before.
class RecordingSource final : public v4::ExpertSource {
 public:
  explicit RecordingSource(const v4::ModelWeights& w) : w_(w) {}
  Status begin_layer(int32_t block, std::span<const int32_t> experts) override {
    block_ = block;
    want_.assign(experts.begin(), experts.end());
    asked_[block].push_back(std::set<int32_t>(experts.begin(), experts.end()));
    return ok_status();
  }
  Result<int32_t> next(const v4::ExpertWeights** weights) override {
    if (want_.empty()) return -1;
    const int32_t e = want_.back();
    want_.pop_back();
    *weights = &w_.blocks[static_cast<size_t>(block_)].ffn.experts[static_cast<size_t>(e)];
    return e;
  }
  bool wants_hints() const override { return true; }
  void hint(int32_t block, std::span<const int32_t> experts) override {
    guessed_[block].push_back(std::set<int32_t>(experts.begin(), experts.end()));
  }
  std::map<int32_t, std::vector<std::set<int32_t>>> asked_, guessed_;

 private:
  const v4::ModelWeights& w_;
  int32_t block_ = -1;
  std::vector<int32_t> want_;
};

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
