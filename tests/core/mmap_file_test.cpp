#include "core/mmap_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "support/temp_dir.h"

namespace frugal {
namespace {

// A fresh directory per test, removed with its files afterwards.
class MmapFileTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& contents) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  test::ScopedTempDir tmp_{"mmap"};
  const std::string dir_ = tmp_.str();
};

TEST_F(MmapFileTest, ContentsMatch) {
  std::string contents(10000, '\0');
  for (size_t i = 0; i < contents.size(); ++i) contents[i] = static_cast<char>(i * 7 + 3);
  const std::string path = write("data.bin", contents);
  auto r = MmapFile::open(path);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  MmapFile f = std::move(r).value();
  EXPECT_EQ(f.size(), contents.size());
  EXPECT_EQ(f.path(), path);
  ASSERT_NE(f.data(), nullptr);
  EXPECT_EQ(std::memcmp(f.data(), contents.data(), contents.size()), 0);
  EXPECT_EQ(f.bytes().size(), contents.size());
  // Advice is best-effort and must not disturb the contents, even for ranges past the end.
  f.advise(MmapAdvice::kWillNeed);
  f.advise(MmapAdvice::kSequential, 4096, 100);
  f.advise(MmapAdvice::kHugePage, 1 << 20);
  EXPECT_EQ(std::memcmp(f.data(), contents.data(), contents.size()), 0);

  MmapFile moved = std::move(f);
  EXPECT_EQ(f.data(), nullptr);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(moved.size(), contents.size());
  EXPECT_EQ(static_cast<char>(moved.data()[9999]), contents[9999]);
}

TEST_F(MmapFileTest, EmptyFileMapsToEmptySpan) {
  auto r = MmapFile::open(write("empty.bin", ""));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->size(), 0u);
  EXPECT_TRUE(r->bytes().empty());
  r->advise(MmapAdvice::kWillNeed);  // no-op, no crash
}

TEST_F(MmapFileTest, MissingFileIsNotFoundWithPath) {
  const std::string path = dir_ + "/no_such_file.safetensors";
  auto r = MmapFile::open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
}

TEST_F(MmapFileTest, DirectoryIsAnError) {
  const std::string sub = dir_ + "/subdir";
  ASSERT_EQ(mkdir(sub.c_str(), 0755), 0);
  auto r = MmapFile::open(sub);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(sub), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("not a regular file"), std::string::npos);
}

TEST_F(MmapFileTest, PathThroughAFileIsAnIoError) {
  // open() fails with ENOTDIR (not ENOENT): an OS error other than "missing", even as root.
  const std::string path = write("plain.bin", "x") + "/inner.bin";
  auto r = MmapFile::open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace frugal
