// The memory budget through the real binary on the shipped tiny model: run under --mem-budget
// prints the same text as without (greedy) and says what it holds; a budget below the minimum is
// one error line naming the minimum; --mem-budget off and malformed sizes; frugal profile writes a
// profile that --expert-profile pins from; bench reports the cache's figures; perplexity is equal.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "run_binary.h"

namespace frugal {
namespace {

using cli_test::run;
using cli_test::RunResult;
using cli_test::slurp;

std::string model_dir() {
  const char* env = std::getenv("FRUGAL_TEST_MODEL_DIR");
  return env != nullptr && *env != '\0' ? env : std::string(FRUGAL_SOURCE_DIR) + "/models/tiny-v4";
}

// Past tiny-v4's minimum (~270 MiB, almost all the fixed overhead) by a few expert slots.
constexpr const char* kBudget = "274M";

TEST(StreamingCli, RunUnderABudgetPrintsTheSameText) {
  const std::vector<std::string> base = {"run", "-m", model_dir(), "-p", "ROMEO:", "--temp",
                                         "0",   "-n", "24",        "-t", "1"};
  const RunResult plain = run(base);
  ASSERT_EQ(plain.rc, 0) << plain.err;
  std::vector<std::string> budget = base;
  budget.insert(budget.end(), {"--mem-budget", kBudget});
  const RunResult streamed = run(budget);
  ASSERT_EQ(streamed.rc, 0) << streamed.err;
  EXPECT_EQ(streamed.out, plain.out);
  EXPECT_NE(streamed.err.find("memory budget 274.00 MiB"), std::string::npos) << streamed.err;
  EXPECT_NE(streamed.err.find("expert slots"), std::string::npos) << streamed.err;
  std::vector<std::string> off = base;
  off.insert(off.end(), {"--mem-budget", "off"});
  const RunResult never = run(off);
  ASSERT_EQ(never.rc, 0) << never.err;
  EXPECT_EQ(never.out, plain.out);
  EXPECT_EQ(never.err.find("memory budget"), std::string::npos) << never.err;
}

TEST(StreamingCli, BadBudgetsAreOneClearLine) {
  for (const char* size : {"1M", "8GB", "-3G", "lots"}) {
    const RunResult r = run({"run", "-m", model_dir(), "-p", "x", "-n", "1", "--mem-budget", size});
    EXPECT_EQ(r.rc, 1) << size;
    EXPECT_NE(r.err.find("--mem-budget"), std::string::npos) << size << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const RunResult r = run({"run", "-m", model_dir(), "-p", "x", "-n", "1", "--mem-budget", "1M"});
  EXPECT_NE(r.err.find("below the minimum"), std::string::npos) << r.err;
}

TEST(StreamingCli, ProfileThenPin) {
  const test::ScopedTempDir tmp("profile");
  const std::string text = tmp.file("text.txt"), prof = tmp.file("profile.json");
  std::ofstream(text) << "ROMEO:\nBut soft, what light through yonder window breaks?\n"
                         "It is the east, and Juliet is the sun.\n";
  const RunResult p = run({"profile", "-m", model_dir(), "-f", text, "-o", prof, "--ctx", "16"});
  ASSERT_EQ(p.rc, 0) << p.err;
  EXPECT_NE(p.out.find("hottest 10%"), std::string::npos) << p.out;
  const nlohmann::json j = nlohmann::json::parse(slurp(prof));
  ASSERT_TRUE(j.contains("blocks"));
  ASSERT_EQ(j.at("blocks").size(), 6u);  // tiny-v4's main blocks
  uint64_t total = 0;
  for (const auto& row : j.at("blocks")) {
    ASSERT_EQ(row.size(), 8u);
    for (const auto& c : row) total += c.get<uint64_t>();
  }
  // Every token adds num_experts_per_tok (2) counts to each of the 6 blocks.
  EXPECT_EQ(total, j.at("tokens").get<uint64_t>() * 2 * 6);
  const RunResult pinned = run({"run", "-m", model_dir(), "-p", "ROMEO:", "--temp", "0", "-n", "8",
                                "--mem-budget", "300M", "--expert-profile", prof});
  ASSERT_EQ(pinned.rc, 0) << pinned.err;
  EXPECT_EQ(pinned.err.find("; 0 pinned"), std::string::npos) << pinned.err;
  const RunResult bad = run({"run", "-m", model_dir(), "-p", "x", "-n", "1", "--mem-budget", "300M",
                             "--expert-profile", text});
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find(text), std::string::npos) << bad.err;
}

TEST(StreamingCli, BenchReportsTheCache) {
  const RunResult r = run({"bench", "-m", model_dir(), "--json", "--prompt", "16", "--gen", "8",
                           "--reps", "2", "--mem-budget", kBudget});
  ASSERT_EQ(r.rc, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("weights").get<std::string>(), "streamed_experts");
  ASSERT_TRUE(j.contains("streamed_experts"));
  const auto& s = j.at("streamed_experts");
  EXPECT_GT(s.at("slots").get<int64_t>(), 0);
  for (const char* k : {"decode_hit_rate", "prefill_hit_rate", "decode_cache_hit_rate"}) {
    const double v = s.at(k).get<double>();
    EXPECT_GE(v, 0.0) << k;
    EXPECT_LE(v, 1.0) << k;
  }
  EXPECT_GT(s.at("disk_probe_gbps").get<double>(), 0.0);
  // The decode's reads replayed: a rate wherever the decode read anything.
  EXPECT_EQ(s.at("replay_gbps").get<double>() > 0, s.at("disk_bytes_per_token").get<double>() > 0)
      << s.dump();
  const double unused = s.at("unused_prefetch_bytes_per_token").get<double>();
  EXPECT_GE(unused, 0.0);
  EXPECT_LE(unused, s.at("disk_bytes_per_token").get<double>());
  EXPECT_GT(s.at("roofline_fraction").get<double>(), 0.0);
  EXPECT_GT(s.at("roofline_fraction_random_probe").get<double>(), 0.0);
  EXPECT_FALSE(j.contains("gemv"));  // skipped under a budget
}

TEST(StreamingCli, PerplexityIsEqual) {
  std::vector<std::string> args = {"perplexity", "-m", model_dir(), "-f", "/dev/stdin",
                                   "--ctx",      "64", "--chunks",  "2"};
  const std::string input(4000, 'a');
  const RunResult a = run(args, input);
  args.insert(args.end(), {"--mem-budget", kBudget});
  const RunResult b = run(args, input);
  ASSERT_EQ(a.rc, 0) << a.err;
  ASSERT_EQ(b.rc, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
}

}  // namespace
}  // namespace frugal

namespace frugal {
namespace {

// synth --hash-layers: every layer routed by token id (the uniform-routing benchmark checkpoint);
// the config says so, the checkpoint has a tid2eid table per layer and runs; too many is an error.
TEST(StreamingCli, SynthHashLayers) {
  const test::ScopedTempDir tmp("synth-hash");
  const std::string dir = tmp.file("tiny");
  const RunResult s =
      run({"synth", "--preset", "tiny", "--hash-layers", "6", "--skew", "0", "-o", dir});
  ASSERT_EQ(s.rc, 0) << s.err;
  const nlohmann::json cfg = nlohmann::json::parse(slurp(dir + "/config.json"));
  EXPECT_EQ(cfg.at("num_hash_layers").get<int>(), 6);
  const RunResult b = run({"bench", "-m", dir, "--json", "--prompt", "8", "--gen", "4", "--reps",
                           "1", "--random-tokens", "--mem-budget", kBudget});
  ASSERT_EQ(b.rc, 0) << b.err;
  EXPECT_EQ(nlohmann::json::parse(b.out).at("decode_tokens").get<std::string>(), "random");
  const RunResult bad = run({"synth", "--preset", "tiny", "--hash-layers", "7", "-o", dir + "x"});
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("--hash-layers 7"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace frugal
