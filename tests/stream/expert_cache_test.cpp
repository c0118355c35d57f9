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

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "stream_test_util.h"

namespace frugal::stream {
namespace {

using namespace stream_test;

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
      EXPECT_GT(st.reads, 0u);
      // Without hints every first use is a demand read. (With them, every slot and a 16-token
      // chunk, the hints of the hash blocks and the router guesses can cover every expert.)
      if (!prefetch) {
        EXPECT_GT(st.misses, 0u);
      }
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

TEST_F(ExpertCachePolicy, AnUnusedPrefetchIsNotANeededByte) {
  // The bench's disk roofline counts needed bytes: a guess no layer asked for was read, but is
  // not one of them; once a later window asks for it, it is.
  const int32_t five[] = {5};
  c->hint(3, five, /*exact=*/false);  // empty slots: read
  use(*c, 3, {6});
  ASSERT_EQ(c->stats().prefetch_reads, 1u);
  // The guess's read finishes on an I/O thread in its own time: wait for it (bounded).
  for (int i = 0; i < 10000 && c->stats().reads < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const ExpertCacheStats s = c->stats();
  ASSERT_EQ(s.reads, 2u);
  EXPECT_EQ(s.unused_prefetches(), 1u);
  EXPECT_EQ(s.needed_bytes(), static_cast<double>(s.bytes_read) / 2);
  c->reset_stats();
  use(*c, 3, {5});  // the guess used now: nothing read, nothing unused
  EXPECT_EQ(c->stats().unused_prefetches(), 0u);
  EXPECT_EQ(c->stats().needed_bytes(), 0.0);
  ExpertCacheStats used;  // a window that read two prefetches and used both, plus a miss
  used.reads = 3;
  used.bytes_read = 300;
  used.prefetch_reads = 3;
  used.prefetch_dropped = 1;
  used.prefetch_used = 2;
  EXPECT_EQ(used.unused_prefetches(), 0u);
  EXPECT_EQ(used.needed_bytes(), 300.0);
  used.prefetch_used = 5;  // used ones read in an earlier window: never below zero
  EXPECT_EQ(used.unused_prefetches(), 0u);
}

TEST(ExpertCache, NoSourceIsAClearError) {
  auto m = load(tiny_dir(), true);
  ASSERT_NE(m, nullptr);
  int64_t length = -1;
  const Status s = forward_one_token(*m, &length);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("set_expert_source"), std::string::npos) << s.to_string();
  EXPECT_EQ(length, 0);
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
