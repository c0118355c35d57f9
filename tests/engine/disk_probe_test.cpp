// The disk read probe (engine/disk_probe.h): which files it reads, that it reads them, and that
// the page cache does not grow from it (O_DIRECT, and the buffered fallback with DONTNEED).
#include "engine/disk_probe.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace frugal::engine {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

// A file of `bytes` random bytes, written, synced and dropped from the page cache.
void write_cold_file(const std::string& path, uint64_t bytes) {
  std::vector<char> data(bytes);
  std::mt19937_64 rng(7);
  for (char& c : data) c = static_cast<char>(rng());
  {
    std::ofstream f(path, std::ios::binary);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::fdatasync(fd), 0);
  ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  ::close(fd);
}

// Pages of `path` in the page cache (mincore over a mapping that is never touched).
uint64_t cached_pages(const std::string& path, uint64_t bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  EXPECT_NE(p, MAP_FAILED);
  const long page = ::sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> vec((bytes + page - 1) / page);
  EXPECT_EQ(::mincore(p, bytes, vec.data()), 0);
  ::munmap(p, bytes);
  uint64_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n;
}

DiskProbeOptions small_options() {
  return {.min_extent = 64 * 1024,
          .max_extent = kMiB,
          .threads = 2,
          .bytes_per_pass = 6 * kMiB,
          .passes = 3};
}

TEST(DiskProbe, CheckpointFiles) {
  test::ScopedTempDir dir("disk");
  EXPECT_FALSE(checkpoint_files(dir.file("absent")).ok());
  EXPECT_FALSE(checkpoint_files(dir.str()).ok());  // an empty folder
  std::ofstream(dir.file("model.safetensors")) << "x";
  Result<std::vector<std::string>> one = checkpoint_files(dir.str());
  ASSERT_TRUE(one.ok()) << one.status().to_string();
  EXPECT_EQ(*one, std::vector<std::string>{dir.file("model.safetensors")});
  EXPECT_EQ(*checkpoint_files(dir.file("model.safetensors")),
            std::vector<std::string>{dir.file("model.safetensors")});
  // The index wins; every shard once, in name order.
  std::ofstream(dir.file("model.safetensors.index.json"))
      << R"({"metadata": {}, "weight_map": {"a": "s-2.safetensors", "b": "s-1.safetensors",
            "c": "s-2.safetensors"}})";
  Result<std::vector<std::string>> shards = checkpoint_files(dir.str());
  ASSERT_TRUE(shards.ok()) << shards.status().to_string();
  EXPECT_EQ(*shards,
            (std::vector<std::string>{dir.file("s-1.safetensors"), dir.file("s-2.safetensors")}));
}

TEST(DiskProbe, ReadsWithoutFillingThePageCache) {
  test::ScopedTempDir dir("disk");
  const uint64_t bytes = 8 * kMiB + 12345;  // not a whole number of pages
  write_cold_file(dir.file("a.safetensors"), bytes);
  write_cold_file(dir.file("b.safetensors"), kMiB / 2);  // smaller than most extents
  std::ofstream(dir.file("tiny.safetensors")) << "too small to read aligned";
  const std::vector<std::string> files = {dir.file("a.safetensors"), dir.file("b.safetensors"),
                                          dir.file("tiny.safetensors")};
  for (bool buffered : {false, true}) {
    DiskProbeOptions o = small_options();
    o.force_buffered = buffered;
    const Result<DiskProbeResult> r = measure_disk_bandwidth(files, o);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->files, 2);
    EXPECT_EQ(r->threads, 2);
    EXPECT_EQ(r->pass_gbps.size(), 3u);
    EXPECT_GE(r->bytes_read, 3 * 6 * kMiB);
    EXPECT_GT(r->gbps, 0.0);
    if (buffered) EXPECT_FALSE(r->direct);
    // Where the test folder's file system refuses O_DIRECT the probe says why.
    EXPECT_EQ(r->direct, r->fallback_reason.empty()) << r->fallback_reason;
    EXPECT_EQ(cached_pages(files[0], bytes), 0u) << (buffered ? "buffered" : "direct");
    EXPECT_EQ(cached_pages(files[1], kMiB / 2), 0u);
  }
}

TEST(DiskProbe, Errors) {
  test::ScopedTempDir dir("disk");
  std::ofstream(dir.file("tiny.safetensors")) << "x";
  const Result<DiskProbeResult> none =
      measure_disk_bandwidth(std::vector<std::string>{dir.file("tiny.safetensors")});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("at least 4 KiB"), std::string::npos);
  const Result<DiskProbeResult> absent =
      measure_disk_bandwidth(std::vector<std::string>{dir.file("absent.safetensors")});
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(absent.status().message().find("absent.safetensors"), std::string::npos);
  DiskProbeOptions o = small_options();
  o.threads = 0;
  EXPECT_FALSE(measure_disk_bandwidth(dir.str(), o).ok());
}

}  // namespace
}  // namespace frugal::engine
