// ByteProgress draws on its stream only when enabled and only after its first redraw interval;
// the summary line names the bytes and the time. AtomicFileWriter leaves the target untouched
// until commit and no temporary behind.
#include "core/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "core/atomic_file_writer.h"
#include "support/temp_dir.h"

namespace frugal {
namespace {

std::string contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[256];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  return out;
}

TEST(ByteProgress, QuietWhenDisabledOrShort) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ByteProgress off({.what = "x", .total = 100, .enabled = false, .out = f});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    off.add(50);
    ByteProgress fast({.what = "y", .total = 100, .enabled = true, .out = f});
    fast.add(100);  // before the first redraw
  }
  EXPECT_EQ(contents(f), "");
  std::fclose(f);
}

TEST(ByteProgress, DrawsProgressAndASummary) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ByteProgress p({.what = "synth", .total = 4ull << 30, .enabled = true, .out = f});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    p.add(1ull << 30);
    p.finish();
    p.add(1);  // after finish: no more lines
  }
  const std::string text = contents(f);
  EXPECT_NE(text.find("\rsynth: 1.00 GiB / 4.00 GiB (25%), "), std::string::npos) << text;
  EXPECT_NE(text.find(" left"), std::string::npos) << text;
  EXPECT_NE(text.find("synth: 1.00 GiB in "), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
  std::fclose(f);
}

TEST(ByteProgress, Formats) {
  EXPECT_EQ(format_byte_count(17), "17 B");
  EXPECT_EQ(format_byte_count(3ull << 29), "1.50 GiB");
  EXPECT_EQ(format_duration(45.2), "45s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(2 * 3600 + 7 * 60 + 10), "2h07m");
}

TEST(AtomicFileWriter, ReplacesOnCommitOnly) {
  const test::ScopedTempDir tmp("atomic-writer");
  const std::string path = tmp.file("f.bin");
  std::ofstream(path) << "old";
  const auto bytes = [](const char* s) {
    return std::as_bytes(std::span<const char>(s, std::char_traits<char>::length(s)));
  };
  {
    auto w = AtomicFileWriter::create(path);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    ASSERT_TRUE(w->write_at(3, bytes("def")).ok());
    ASSERT_TRUE(w->write_at(0, bytes("abc")).ok());
  }  // dropped uncommitted
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp.path()), {}), 1);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(std::ifstream(path).rdbuf()), {}), "old");
  auto w = AtomicFileWriter::create(path);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->write_at(3, bytes("def")).ok());
  ASSERT_TRUE(w->write_at(0, bytes("abc")).ok());
  ASSERT_TRUE(w->commit().ok());
  EXPECT_FALSE(w->write_at(0, bytes("x")).ok());
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "abcdef");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp.path()), {}), 1);
}

}  // namespace
}  // namespace frugal
