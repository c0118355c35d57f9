// Temporary folders for tests. ctest runs every test case as its own process, several at a time,
// so no two processes may write the same path: every folder here has a name made unique by
// mkdtemp, and goes away with everything in it when its owner does. `make test` runs the suite
// with TMPDIR set to a folder of its own and fails if anything is left there
// (scripts/ctest_clean.sh).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

namespace frugal::test {

// `<gtest TempDir>/frugal-<tag>-XXXXXX` ($TEST_TMPDIR, else $TMPDIR, else /tmp), removed with its
// contents by the destructor.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(std::string_view tag = "test") {
    std::string tmpl = ::testing::TempDir() + "frugal-" + std::string(tag) + "-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "mkdtemp %s: %s\n", tmpl.c_str(), std::strerror(errno));
      std::abort();  // no test can run without its folder
    }
    path_ = tmpl;
  }
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  // `<dir>/<name>`: a path inside, not created.
  std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A folder of this process's own, made on first use and removed at exit (a function-local static:
// destroyed after main returns), for fixtures a process builds once and several tests read.
inline const ScopedTempDir& process_temp_dir() {
  static const ScopedTempDir dir("process");
  return dir;
}

}  // namespace frugal::test
