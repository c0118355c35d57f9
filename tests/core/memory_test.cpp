#include "core/memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

namespace frugal {
namespace {

bool aligned_to(const void* p, uint64_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

TEST(AlignedBuffer, SmallBufferIsCacheLineAlignedAndCounted) {
  MemoryStats stats;
  {
    auto r = AlignedBuffer::allocate(100, &stats);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    AlignedBuffer b = std::move(r).value();
    EXPECT_TRUE(aligned_to(b.data(), 64));
    EXPECT_EQ(b.size(), 100u);
    EXPECT_EQ(b.reserved(), 128u);  // rounded up to the alignment
    EXPECT_FALSE(b.huge_pages());
    std::memset(b.data(), 0xab, b.size());  // writable over its whole size (ASan checks)
    EXPECT_EQ(stats.bytes(), 128u);
    EXPECT_EQ(stats.buffers(), 1u);
    EXPECT_EQ(stats.huge_page_bytes(), 0u);
  }
  EXPECT_EQ(stats.bytes(), 0u);
  EXPECT_EQ(stats.buffers(), 0u);
  EXPECT_EQ(stats.peak_bytes(), 128u);
}

TEST(AlignedBuffer, LargeBufferUsesHugePagePath) {
  MemoryStats stats;
  const uint64_t size = 5 * (uint64_t{1} << 20) + 3;  // 5 MiB + 3: three 2 MiB pages
  auto r = AlignedBuffer::allocate(size, &stats);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  AlignedBuffer b = std::move(r).value();
  EXPECT_TRUE(aligned_to(b.data(), kHugePageSize));
  EXPECT_TRUE(b.huge_pages());
  EXPECT_EQ(b.reserved(), 6 * (uint64_t{1} << 20));
  std::memset(b.data(), 1, b.reserved());
  EXPECT_EQ(stats.bytes(), b.reserved());
  EXPECT_EQ(stats.huge_page_bytes(), b.reserved());
  // Whether the kernel actually used huge pages depends on its THP setting: report, not assert.
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(thp, mode);
  std::printf("transparent_hugepage: %s\n", mode.empty() ? "(unknown)" : mode.c_str());
  b.reset();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(stats.bytes(), 0u);
  EXPECT_EQ(stats.huge_page_bytes(), 0u);
}

TEST(AlignedBuffer, OptionsChoosePath) {
  MemoryStats stats;
  auto small_huge = AlignedBuffer::allocate(64, &stats, {.huge_pages = HugePages::kAlways});
  ASSERT_TRUE(small_huge.ok());
  EXPECT_TRUE(small_huge->huge_pages());
  EXPECT_EQ(small_huge->reserved(), kHugePageSize);
  auto big_plain = AlignedBuffer::allocate(4 << 20, &stats,
                                           {.alignment = 4096, .huge_pages = HugePages::kNever});
  ASSERT_TRUE(big_plain.ok());
  EXPECT_FALSE(big_plain->huge_pages());
  EXPECT_TRUE(aligned_to(big_plain->data(), 4096));
  EXPECT_EQ(stats.buffers(), 2u);
  EXPECT_EQ(stats.bytes(), kHugePageSize + (4u << 20));
}

TEST(AlignedBuffer, MoveTransfersOwnership) {
  MemoryStats stats;
  AlignedBuffer a = AlignedBuffer::allocate(256, &stats).value();
  std::byte* p = a.data();
  AlignedBuffer b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.data(), p);
  AlignedBuffer c = AlignedBuffer::allocate(64, &stats).value();
  EXPECT_EQ(stats.buffers(), 2u);
  c = std::move(b);  // frees c's old buffer
  EXPECT_EQ(stats.buffers(), 1u);
  EXPECT_EQ(stats.bytes(), 256u);
  EXPECT_EQ(c.data(), p);
}

TEST(AlignedBuffer, ZeroBytesAndBadOptions) {
  MemoryStats stats;
  auto z = AlignedBuffer::allocate(0, &stats);
  ASSERT_TRUE(z.ok());
  EXPECT_TRUE(z->empty());
  EXPECT_EQ(stats.buffers(), 0u);
  for (uint64_t a : {0u, 1u, 32u, 96u, 4u << 20}) {
    auto r = AlignedBuffer::allocate(64, &stats, {.alignment = a});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << a;
  }
}

TEST(AlignedBuffer, FailureNamesTheSize) {
  MemoryStats stats;
  // Over the sanity limit: refused before asking the system.
  auto r = AlignedBuffer::allocate(uint64_t{1} << 50, &stats);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find(std::to_string(uint64_t{1} << 50)), std::string::npos)
      << r.status().message();
  // 128 TiB is the whole user address space: the system refuses the mapping.
  const uint64_t huge = uint64_t{1} << 47;
  auto m = AlignedBuffer::allocate(huge, &stats);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(m.status().message().find(std::to_string(huge)), std::string::npos)
      << m.status().message();
  EXPECT_EQ(stats.bytes(), 0u);
  EXPECT_EQ(stats.buffers(), 0u);
}

}  // namespace
}  // namespace frugal
