// Runs the real `frugal` binary (FRUGAL_BIN) as a subprocess for the CLI tests: stdin from a file
// (so it is not a terminal), stdout, stderr and the exit code captured.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace frugal::cli_test {

inline const std::string kBin = FRUGAL_BIN;

struct RunResult {
  int rc = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The emulator to start kBin through in a cross build (tests/cli/CMakeLists.txt), split at spaces;
// empty for a native build.
inline std::vector<std::string> emulator_words() {
  std::vector<std::string> words;
#ifdef FRUGAL_BIN_EMULATOR
  std::istringstream in(FRUGAL_BIN_EMULATOR);
  for (std::string w; in >> w;) words.push_back(w);
#endif
  return words;
}

// Runs kBin with `args` and `input` on stdin. stdin, stdout and stderr go through files in a
// folder of this call's own, removed when it returns.
inline RunResult run(const std::vector<std::string>& args, const std::string& input = "") {
  const test::ScopedTempDir tmp("cli");
  const std::string in_path = tmp.file("in"), out_path = tmp.file("out"),
                    err_path = tmp.file("err");
  std::ofstream(in_path, std::ios::binary) << input;
  // Everything the child needs is made before fork: it only calls async-signal-safe functions,
  // so tests may run this from several threads at once.
  std::vector<std::string> words = emulator_words();
  words.push_back(kBin);
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int in = open(in_path.c_str(), O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  RunResult r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

}  // namespace frugal::cli_test
