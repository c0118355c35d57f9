// Helpers of the stream tests (expert_cache_test.cpp, expert_source_test.cpp, embed_rows_test.cpp):
// a private copy of tiny-v4, models loaded
// resident or with streamed experts, an expert cache over them, a fixed run of prompt and decode
// steps, and an ExpertSource that serves a resident model's experts and records what it is asked.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../v4/v4_random.h"
#include "stream/expert_cache.h"
#include "support/temp_dir.h"

namespace frugal::stream::stream_test {

using v4::testing::new_cache;
using v4::testing::test_kernels;

inline std::string tiny_dir() { return std::string(FRUGAL_SOURCE_DIR) + "/models/tiny-v4"; }

inline std::unique_ptr<v4::Model> load(const std::string& dir, bool streamed,
                                       int64_t max_chunk = 16) {
  v4::LoadOptions lo;
  lo.stream_experts = streamed;
  auto m = v4::Model::load(dir, test_kernels(), lo, {.max_chunk = max_chunk, .max_seq_len = 512});
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return m.ok() ? std::move(*m) : nullptr;
}

inline std::unique_ptr<ExpertCache> make_cache(const v4::Model& m, int64_t slots,
                                               bool prefetch = true, bool direct = true) {
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
inline std::vector<float> run(v4::Model& m, int prompt, int steps, uint32_t seed = 7) {
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

// A copy of tiny-v4 in a folder of the test's own.
inline std::string copy_tiny(const test::ScopedTempDir& tmp) {
  const std::string dir = tmp.file("tiny");
  std::filesystem::create_directory(dir);
  for (const char* f : {"config.json", "model.safetensors"}) {
    std::filesystem::copy_file(tiny_dir() + "/" + f, dir + "/" + f);
  }
  return dir;
}

// One forward of one token (id 1) on a fresh sequence: its status, and the sequence's length
// after it in *length.
inline Status forward_one_token(v4::Model& m, int64_t* length) {
  auto cache = new_cache(m, kv::CacheFormat::kFp8);
  std::vector<float> logits(static_cast<size_t>(m.config().vocab_size));
  const int32_t id = 1;
  const Status s = m.forward(*cache, {.ids = {&id, 1}, .logits = logits});
  *length = cache->length();
  return s;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
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

}  // namespace frugal::stream::stream_test
