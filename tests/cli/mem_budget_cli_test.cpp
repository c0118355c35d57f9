// frugal mem --budget (docs/STREAMING.md) on the real binary: the plan of the official V4-Flash
// config, the minimum-budget and size errors, a profile's hit rate and the measured bandwidths
// on the shipped tiny model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mem_json.h"
#include "run_binary.h"

namespace frugal {
namespace {

using cli_test::run;
using cli_test::RunResult;
using nlohmann::json;

using cli_test::mem_json;
const std::string& kFlash = cli_test::kFlashConfig;
const std::string kTiny = std::string(FRUGAL_SOURCE_DIR) + "/models/tiny-v4";

TEST(MemBudget, FlashConfigOnly) {
  const json j = mem_json({"-m", kFlash, "--config-only", "--budget", "32G"});
  EXPECT_EQ(j["budget"], uint64_t{32} << 30);
  EXPECT_EQ(j["slot_bytes"], 13393920u);
  EXPECT_EQ(j["streamed_experts"], 43 * 256);
  EXPECT_EQ(j["min_slots"], 12);
  EXPECT_LE(j["used_bytes"].get<uint64_t>(), j["budget"].get<uint64_t>());
  EXPECT_GT(j["used_bytes"].get<uint64_t>() + 13393920u, j["budget"].get<uint64_t>());
  EXPECT_DOUBLE_EQ(j["hit_rate"].get<double>(), j["slots"].get<double>() / (43.0 * 256.0));
  EXPECT_EQ(j["ram_gbps_source"].get<std::string>().rfind("default", 0), 0u);
  EXPECT_EQ(j["disk_gbps_source"].get<std::string>().rfind("default", 0), 0u);
  EXPECT_GT(j["prediction"]["tok_s"].get<double>(), 0.0);
  EXPECT_GE(j["prediction"]["overlapped_tok_s"].get<double>(),
            j["prediction"]["tok_s"].get<double>());
  EXPECT_EQ(j["resident_by_kind"].count("routed_experts"), 0u);
  // The embedding stays on disk, read one row per token: 129,280 x 4,096 bf16.
  EXPECT_EQ(j["resident_by_kind"].count("embed"), 0u);
  EXPECT_EQ(j["streamed_embed_bytes"], uint64_t{129280} * 4096 * 2);

  const RunResult text = run({"mem", "-m", kFlash, "--config-only", "--budget", "64G"});
  ASSERT_EQ(text.rc, 0) << text.err;
  EXPECT_NE(text.out.find("4519 slots of 12.77 MiB: 4519 of 11008 routed experts"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("embedding           1010.00 MiB  on disk, not resident"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("predicted decode"), std::string::npos);
}

TEST(MemBudget, Errors) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"mem", "-m", kFlash, "--config-only", "--budget", "7G"},
       "--mem-budget 7.00 GiB is below the minimum 7.77 GiB"},
      {{"mem", "-m", kFlash, "--config-only", "--budget", "8GB"}, "--budget: \"GB\" is ambiguous"},
      {{"mem", "-m", kFlash, "--config-only", "--measure"}, "--measure requires --budget"},
      {{"mem", "-m", kFlash, "--config-only", "--budget", "32G", "--measure"},
       "measuring the disk (the probe reads the model's safetensors files; or give --disk-gbps)"},
      {{"mem", "-m", kFlash, "--config-only", "--budget", "32G", "--expert-profile",
        "/nonexistent"},
       "/nonexistent: cannot open the expert profile"},
  };
  for (const Case& c : cases) {
    const RunResult r = run(c.args);
    EXPECT_NE(r.rc, 0) << c.message;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// Tiny model: 6 layers x 8 experts, 2 per token. A budget of the minimum plus 3 slots holds 7;
// a profile whose 7 hottest experts hold 70 of 100 counts predicts a 70 % hit rate.
TEST(MemBudget, ProfileHitRate) {
  const json base =
      mem_json({"-m", kTiny, "--budget", "1G", "--ram-gbps", "30", "--disk-gbps", "2"});
  EXPECT_EQ(base["ram_gbps_source"], "given (--ram-gbps)");
  EXPECT_TRUE(base["all_experts_fit"].get<bool>());
  const uint64_t budget =
      base["min_budget"].get<uint64_t>() + 3 * base["slot_bytes"].get<uint64_t>();
  const test::ScopedTempDir dir("mem-budget");
  json profile;
  profile["blocks"] = json::array();
  for (int b = 0; b < 6; ++b) profile["blocks"].push_back(std::vector<int>(8, 0));
  for (int e = 0; e < 7; ++e) profile["blocks"][e % 6][e / 6] = 10;      // 7 hot experts
  for (int i = 0; i < 30; ++i) profile["blocks"][i % 6][2 + i % 5] = 1;  // 30 cold counts
  std::ofstream(dir.file("p.json")) << profile.dump();
  const json j = mem_json({"-m", kTiny, "--budget", std::to_string(budget), "--ram-gbps", "30",
                           "--disk-gbps", "2", "--expert-profile", dir.file("p.json")});
  EXPECT_EQ(j["slots"], 7);
  EXPECT_DOUBLE_EQ(j["hit_rate"].get<double>(), 0.7);
  EXPECT_NE(j["hit_rate_source"].get<std::string>().find("7 hottest experts pinned"),
            std::string::npos);
}

// A checkpoint and no figures: both bandwidths measured, the disk by the O_DIRECT probe.
TEST(MemBudget, MeasuresWithACheckpoint) {
  const json j = mem_json({"-m", kTiny, "--budget", "1G"});
  EXPECT_EQ(j["ram_gbps_source"].get<std::string>().rfind("measured", 0), 0u);
  EXPECT_EQ(j["disk_gbps_source"].get<std::string>().rfind("measured", 0), 0u);
  EXPECT_GT(j["ram_gbps"].get<double>(), 0.0);
  EXPECT_GT(j["disk_gbps"].get<double>(), 0.0);
  EXPECT_EQ(j["disk_probe"]["files"], 1);
  EXPECT_EQ(j["disk_probe"]["direct"].get<bool>(), j["disk_probe"]["fallback_reason"] == "");
}

}  // namespace
}  // namespace frugal
