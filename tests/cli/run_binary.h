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

// Runs kBin with `args` and `input` on stdin. stdin, stdout and stderr go through files in a
// folder of this call's own, removed when it returns.
inline RunResult run(const std::vector<std::string>& args, const std::string& input = "") {
  const test::ScopedTempDir tmp("cli");
  const std::string in_path = tmp.file("in"), out_path = tmp.file("out"),
                    err_path = tmp.file("err");
  std::ofstream(in_path, std::ios::binary) << input;
  // Everything the child needs is made before fork: it only calls async-signal-safe functions,
  // so tests may run this from several threads at once.
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(kBin.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int in = open(in_path.c_str(), O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(kBin.c_str(), argv.data());
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
