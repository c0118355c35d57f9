#include "core/file_write.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;

constexpr int kWriters = 8;
constexpr int kRounds = 100;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

// Writer w's contents: a different length per writer (so a file cut short or mixed from two is
// not the same length as either) and a byte pattern of its own on every page.
std::string contents_of(int w) {
  std::string s(20000 + 4099 * w, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('A' + (w * 7 + i / 4096) % 26);
  return s;
}

bool is_one_of_the_writers(const std::string& got) {
  for (int w = 0; w < kWriters; ++w)
    if (got == contents_of(w)) return true;
  return false;
}

TEST(WriteFileAtomic, WritesAndReplacesWithoutATemporaryLeft) {
  const test::ScopedTempDir tmp("file-write");
  const std::string path = tmp.file("a.bin");
  ASSERT_TRUE(write_file_atomic(path, "first").ok());
  EXPECT_EQ(slurp(path), "first");
  ASSERT_TRUE(write_file_atomic(path, "second, longer").ok());
  EXPECT_EQ(slurp(path), "second, longer");
  ASSERT_TRUE(write_file_atomic(path, "").ok());
  EXPECT_EQ(slurp(path), "");
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"a.bin"});
}

// The issue this guards against: two test processes wrote one fixture, each through the same
// `path + ".tmp"`, and one renamed the other's file away. Here 8 threads write one path 100 times
// each while a reader checks that every read sees one writer's whole file.
TEST(WriteFileAtomic, ConcurrentThreadsAllSucceedAndTheFileIsAlwaysWhole) {
  const test::ScopedTempDir tmp("file-write-threads");
  const std::string path = tmp.file("shared.bin");
  ASSERT_TRUE(write_file_atomic(path, contents_of(0)).ok());
  std::atomic<int> failures{0}, torn{0}, reads{0};
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      if (!is_one_of_the_writers(slurp(path))) torn.fetch_add(1);
      reads.fetch_add(1);
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const std::string mine = contents_of(w);
      for (int r = 0; r < kRounds; ++r)
        if (!write_file_atomic(path, mine).ok()) failures.fetch_add(1);
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(torn.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_TRUE(is_one_of_the_writers(slurp(path)));
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"shared.bin"});
}

// The same across processes (ctest's case): 8 forked children, 100 writes each.
TEST(WriteFileAtomic, ConcurrentProcessesAllSucceed) {
  const test::ScopedTempDir tmp("file-write-procs");
  const std::string path = tmp.file("shared.bin");
  std::vector<std::string> inputs;
  for (int w = 0; w < kWriters; ++w) inputs.push_back(contents_of(w));
  std::vector<pid_t> children;
  for (int w = 0; w < kWriters; ++w) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int failed = 0;
      for (int r = 0; r < kRounds; ++r) failed += write_file_atomic(path, inputs[w]).ok() ? 0 : 1;
      _exit(failed == 0 ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (const pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a writer failed";
  }
  EXPECT_TRUE(is_one_of_the_writers(slurp(path)));
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"shared.bin"});
}

TEST(WriteFileAtomic, AFailedWriteLeavesTheTargetAndNoTemporary) {
  const test::ScopedTempDir tmp("file-write-fail");
  // The target is a non-empty directory: the data is written, the rename fails.
  const std::string path = tmp.file("taken");
  fs::create_directories(path + "/inside");
  const Status s = write_file_atomic(path, "data");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_NE(s.message().find("cannot rename to " + path), std::string::npos) << s.message();
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"taken"});
  EXPECT_TRUE(fs::is_directory(path + "/inside"));
  // A folder that does not exist: the error names the temporary it could not create.
  const Status m = write_file_atomic(tmp.file("no/such/dir/x"), "data");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find(tmp.file("no/such/dir/x") + ".tmp-"), std::string::npos);
  EXPECT_NE(m.message().find("cannot create"), std::string::npos) << m.message();
}

TEST(WriteFileAtomic, KeepsTheUsualPermissions) {
  const test::ScopedTempDir tmp("file-write-mode");
  const std::string path = tmp.file("m");
  ASSERT_TRUE(write_file_atomic(path, "x").ok());
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(fs::status(path).permissions(), static_cast<fs::perms>(0644 & ~mask));
}

// ---- StagedDirectory ----

bool owned(std::string_view name) { return name.starts_with("part"); }

// Stages `files` parts, each holding `tag`, and commits them to `target`.
Status write_dir(const std::string& target, const std::string& tag, int files) {
  FRUGAL_ASSIGN_OR_RETURN(StagedDirectory staged, StagedDirectory::create(target));
  for (int i = 0; i < files; ++i) {
    FRUGAL_RETURN_IF_ERROR(
        write_file_atomic(staged.path() + "/part" + std::to_string(i), tag + std::to_string(i)));
  }
  return staged.commit(owned);
}

TEST(StagedDirectory, CreatesReplacesAndLeavesNothingBeside) {
  const test::ScopedTempDir tmp("staged");
  const std::string target = tmp.file("out");
  ASSERT_TRUE(write_dir(target, "a", 3).ok());
  EXPECT_EQ(entries(target), (std::vector<std::string>{"part0", "part1", "part2"}));
  ASSERT_TRUE(write_dir(target + "/", "b", 2).ok());  // fewer files: the stale part2 goes too
  EXPECT_EQ(entries(target), (std::vector<std::string>{"part0", "part1"}));
  EXPECT_EQ(slurp(target + "/part1"), "b1");
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"out"});
  fs::remove_all(target);
  fs::create_directories(target);  // an empty directory is replaced too
  ASSERT_TRUE(write_dir(target, "c", 1).ok());
  EXPECT_EQ(entries(target), std::vector<std::string>{"part0"});
}

TEST(StagedDirectory, RefusesADirectoryWithOtherFilesAndLeavesItAsItWas) {
  const test::ScopedTempDir tmp("staged-foreign");
  const std::string target = tmp.file("mine");
  fs::create_directories(target);
  std::ofstream(target + "/notes.txt") << "keep me";
  std::ofstream(target + "/part0") << "old";
  const Status s = write_dir(target, "new", 2);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'notes.txt'"), std::string::npos) << s.message();
  EXPECT_EQ(entries(target), (std::vector<std::string>{"notes.txt", "part0"}));
  EXPECT_EQ(slurp(target + "/part0"), "old");
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"mine"});  // staging removed
  std::ofstream(tmp.file("file")) << "x";
  EXPECT_FALSE(write_dir(tmp.file("file"), "new", 1).ok());
  EXPECT_EQ(slurp(tmp.file("file")), "x");
}

TEST(StagedDirectory, UncommittedIsRemoved) {
  const test::ScopedTempDir tmp("staged-drop");
  {
    auto staged = StagedDirectory::create(tmp.file("never"));
    ASSERT_TRUE(staged.ok()) << staged.status().to_string();
    ASSERT_TRUE(write_file_atomic(staged->path() + "/part0", "x").ok());
  }
  EXPECT_TRUE(entries(tmp.path()).empty());
}

// 8 writers of one directory, 20 rounds each, every writer's set of files different in count
// and contents: all succeed, and the directory is always one writer's whole set.
TEST(StagedDirectory, ConcurrentWritersLeaveOneWholeSet) {
  const test::ScopedTempDir tmp("staged-threads");
  const std::string target = tmp.file("shared");
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const std::string tag = std::string("w").append(std::to_string(w)).append(":");
      for (int r = 0; r < 20; ++r)
        if (!write_dir(target, tag, 1 + w % 4).ok()) failures++;
    });
  }
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  const std::vector<std::string> names = entries(target);
  ASSERT_FALSE(names.empty());
  const std::string first = slurp(target + "/part0");
  const std::string tag = first.substr(0, first.size() - 1);
  const int w = std::stoi(tag.substr(1));
  ASSERT_EQ(names.size(), static_cast<size_t>(1 + w % 4));
  for (size_t i = 0; i < names.size(); ++i)
    EXPECT_EQ(slurp(target + "/part" + std::to_string(i)), tag + std::to_string(i));
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"shared"});
}

}  // namespace
}  // namespace frugal
