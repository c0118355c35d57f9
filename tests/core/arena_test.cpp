#include "core/arena.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace frugal {
namespace {

bool aligned64(const void* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; }

TEST(Arena, AllocatesAlignedAndTracksHighWater) {
  MemoryStats stats;
  auto r = Arena::create(1024, &stats);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  Arena arena = std::move(r).value();
  EXPECT_EQ(arena.capacity(), 1024u);
  EXPECT_EQ(stats.bytes(), 1024u);

  float* a = arena.allocate<float>(3);  // 12 bytes
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(aligned64(a));
  uint16_t* b = arena.allocate<uint16_t>(100);  // starts at 64
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(aligned64(b));
  EXPECT_EQ(reinterpret_cast<std::byte*>(b) - reinterpret_cast<std::byte*>(a), 64);
  EXPECT_EQ(arena.used(), 64u + 200u);
  std::memset(b, 0, 200);

  const Arena::Mark m = arena.mark();
  double* c = arena.allocate<double>(64);  // 512 bytes at 320
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(arena.used(), 832u);
  EXPECT_EQ(arena.high_water(), 832u);
  arena.reset(m);
  EXPECT_EQ(arena.used(), 264u);
  EXPECT_EQ(arena.high_water(), 832u);
  double* c2 = arena.allocate<double>(8);  // reuses the space freed by the reset
  EXPECT_EQ(c2, c);
  arena.reset();
  EXPECT_EQ(arena.used(), 0u);
  EXPECT_EQ(arena.allocate<float>(1), a);
  EXPECT_FALSE(arena.failed());
  EXPECT_TRUE(arena.status().ok());
}

TEST(Arena, OutOfSpaceReturnsNullAndRemembersFirstFailure) {
  Arena arena = Arena::create(256, nullptr).value();
  ASSERT_NE(arena.allocate<uint8_t>(200), nullptr);
  EXPECT_EQ(arena.allocate<uint8_t>(57), nullptr);  // 200 -> 256 aligned: no room left
  EXPECT_EQ(arena.allocate<uint8_t>(1), nullptr);
  EXPECT_TRUE(arena.failed());
  Status s = arena.status();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("57 bytes"), std::string::npos) << s.message();  // the first one
  EXPECT_NE(s.message().find("200 of 256"), std::string::npos) << s.message();
  EXPECT_EQ(arena.used(), 200u);  // a failure allocates nothing

  arena.reset();
  ASSERT_NE(arena.allocate<uint8_t>(256), nullptr);  // exactly full is fine
  EXPECT_TRUE(arena.failed());                       // sticky until cleared
  arena.clear_failure();
  EXPECT_TRUE(arena.status().ok());
  EXPECT_EQ(arena.allocate<uint64_t>(uint64_t{1} << 62), nullptr);  // size overflows 64 bits
  EXPECT_NE(arena.status().message().find("overflows"), std::string::npos);
}

TEST(Arena, ZeroSizeAndEmptyArena) {
  Arena empty;
  EXPECT_EQ(empty.capacity(), 0u);
  float* z = empty.allocate<float>(0);
  EXPECT_NE(z, nullptr);
  EXPECT_TRUE(aligned64(z));
  EXPECT_FALSE(empty.failed());
  EXPECT_EQ(empty.allocate<float>(1), nullptr);
  EXPECT_TRUE(empty.failed());

  Arena arena = Arena::create(128, nullptr).value();
  ASSERT_NE(arena.allocate<uint8_t>(1), nullptr);
  uint8_t* z2 = arena.allocate<uint8_t>(0);
  EXPECT_NE(z2, nullptr);
  EXPECT_TRUE(aligned64(z2));
  EXPECT_EQ(arena.used(), 1u);
}

TEST(Arena, ScopeResetsAndMoveKeepsState) {
  MemoryStats stats;
  Arena arena = Arena::create(4096, &stats).value();
  ASSERT_NE(arena.allocate<float>(10), nullptr);
  {
    ArenaScope scope(arena);
    ASSERT_NE(arena.allocate<float>(500), nullptr);
    EXPECT_GT(arena.used(), 2000u);
  }
  EXPECT_EQ(arena.used(), 40u);
  Arena moved = std::move(arena);
  EXPECT_EQ(moved.used(), 40u);
  EXPECT_EQ(moved.capacity(), 4096u);
  EXPECT_EQ(arena.capacity(), 0u);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(stats.buffers(), 1u);
}

TEST(Arena, LargeArenaUsesHugePages) {
  MemoryStats stats;
  Arena arena = Arena::create(8 << 20, &stats).value();
  EXPECT_EQ(stats.huge_page_bytes(), 8u << 20);
  float* p = arena.allocate<float>(2 << 20);  // exactly 8 MiB
  ASSERT_NE(p, nullptr);
  p[(2 << 20) - 1] = 1.0f;
  EXPECT_EQ(arena.allocate<float>(1), nullptr);
}

}  // namespace
}  // namespace frugal
