// The snapshot store: longest strictly shorter prefix wins, LRU eviction by bytes.
#include "serve/prefix_cache.h"

#include <gtest/gtest.h>

namespace frugal::serve {
namespace {

std::shared_ptr<PrefixEntry> entry(std::vector<int32_t> ids, size_t payload) {
  auto e = std::make_shared<PrefixEntry>();
  e->ids = std::move(ids);
  e->snapshot.parts.push_back(std::vector<std::byte>(payload));
  return e;
}

TEST(PrefixCache, LongestStrictPrefixWins) {
  PrefixCache c(1 << 20);
  c.insert(entry({1, 2}, 10));
  c.insert(entry({1, 2, 3, 4}, 10));
  c.insert(entry({1, 9}, 10));
  const std::vector<int32_t> q = {1, 2, 3, 4, 5};
  auto hit = c.lookup(q);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->ids.size(), 4u);
  // The whole prompt is never a hit: one position must remain to produce logits.
  auto hit2 = c.lookup(std::vector<int32_t>{1, 2, 3, 4});
  ASSERT_NE(hit2, nullptr);
  EXPECT_EQ(hit2->ids.size(), 2u);
  EXPECT_EQ(c.lookup(std::vector<int32_t>{2, 1, 3}), nullptr);
  EXPECT_TRUE(c.contains(std::vector<int32_t>{1, 9}));
  EXPECT_FALSE(c.contains(std::vector<int32_t>{1}));
  const PrefixCacheStats st = c.stats();
  EXPECT_EQ(st.lookups, 3u);
  EXPECT_EQ(st.hits, 2u);
  EXPECT_EQ(st.hit_tokens, 6u);
  EXPECT_EQ(st.entries, 3u);
}

TEST(PrefixCache, EvictsLeastRecentlyUsedByBytes) {
  const uint64_t one = entry({1}, 1000)->bytes();
  PrefixCache c(3 * one + one / 2);  // room for three
  c.insert(entry({1}, 1000));
  c.insert(entry({2}, 1000));
  c.insert(entry({3}, 1000));
  ASSERT_NE(c.lookup(std::vector<int32_t>{1, 7}), nullptr);  // {1} is now the most recent
  c.insert(entry({4}, 1000));                                // evicts {2}
  EXPECT_TRUE(c.contains(std::vector<int32_t>{1}));
  EXPECT_FALSE(c.contains(std::vector<int32_t>{2}));
  EXPECT_TRUE(c.contains(std::vector<int32_t>{3}));
  EXPECT_TRUE(c.contains(std::vector<int32_t>{4}));
  EXPECT_EQ(c.stats().evictions, 1u);
  EXPECT_LE(c.stats().bytes, c.max_bytes());
  c.insert(entry({5}, 10 * 1000));  // larger than the whole budget: not stored
  EXPECT_FALSE(c.contains(std::vector<int32_t>{5}));
  c.insert(entry({3}, 1000));  // same ids: replaced, not duplicated
  EXPECT_EQ(c.stats().entries, 3u);
  c.clear();
  EXPECT_EQ(c.stats().bytes, 0u);
  EXPECT_EQ(c.lookup(std::vector<int32_t>{1, 2}), nullptr);
}

}  // namespace
}  // namespace frugal::serve
