// frugal mem --ranks N [--pipeline-stages S] (engine/rank_plan.h) on the real binary: the JSON
// of the official V4-Flash config, one rank against the single-process plan, the text, and the
// shard limits as one-line errors naming the flag.
#include <gtest/gtest.h>

#include <algorithm>
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

const std::string& kFlash = cli_test::kFlashConfig;

json mem_json(const std::vector<std::string>& args) {  // of the V4-Flash config
  std::vector<std::string> all = {"-m", kFlash, "--config-only"};
  all.insert(all.end(), args.begin(), args.end());
  return cli_test::mem_json(all);
}

TEST(MemRanks, FlashTwoRanksJson) {
  const json whole = mem_json({});
  const json j = mem_json({"--ranks", "2"});
  EXPECT_EQ(j["ranks"], 2);
  EXPECT_EQ(j["pipeline_stages"], 1);
  EXPECT_EQ(j["expert_ranks"], 2);
  EXPECT_EQ(j["kv_format"], "fp8");
  ASSERT_EQ(j["per_rank"].size(), 2u);
  const json& r0 = j["per_rank"][0];
  const json& r1 = j["per_rank"][1];
  EXPECT_EQ(r0["shard"], "rank 0 of 2: experts 0-127 of 256");
  EXPECT_EQ(r1["first_expert"], 128);
  EXPECT_EQ(r1["end_expert"], 256);
  EXPECT_TRUE(r0["embedding"].get<bool>() && r0["head"].get<bool>() && r0["mtp"].get<bool>());
  // The routed experts split in two; the weights of one process plus one replica of the rest.
  const uint64_t routed = whole["weights_by_kind"]["routed_experts"].get<uint64_t>();
  EXPECT_EQ(r0["weights_by_kind"]["routed_experts"].get<uint64_t>() +
                r1["weights_by_kind"]["routed_experts"].get<uint64_t>(),
            routed);
  EXPECT_EQ(j["one_process_weights_bytes"], whole["weights_bytes"]);
  EXPECT_EQ(j["sum_weights_bytes"].get<uint64_t>(),
            whole["weights_bytes"].get<uint64_t>() + j["replicated_weights_bytes"].get<uint64_t>());
  EXPECT_EQ(j["unheld_weights_bytes"], 0);
  EXPECT_EQ(r0["kv_bytes"], whole["kv_bytes_total"]["fp8"]);

  const json one = mem_json({"--ranks", "1"});
  EXPECT_EQ(one["per_rank"][0]["weights_bytes"], whole["weights_bytes"]);
  EXPECT_EQ(one["per_rank"][0]["weights_by_kind"], whole["weights_by_kind"]);

  const json bf16 = mem_json({"--ranks", "4", "--pipeline-stages", "2", "--cache", "bf16"});
  EXPECT_EQ(bf16["kv_format"], "bf16");
  EXPECT_EQ(bf16["per_rank"][3]["shard"],
            "rank 3 of 4: stage 1 of 2 (blocks 21-42), experts "
            "128-255 of 256");
  EXPECT_GT(bf16["unheld_weights_bytes"].get<uint64_t>(), 0u);  // the MTP block
}

TEST(MemRanks, Text) {
  const RunResult r =
      run({"mem", "-m", kFlash, "--config-only", "--ranks", "4", "--pipeline-stages", "2"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("rank 2 of 4: stage 1 of 2 (blocks 21-42), experts 0-127 of 256, head\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("sum over 4 ranks: "), std::string::npos);
  EXPECT_NE(r.out.find("held by no rank: the MTP blocks"), std::string::npos);
}

TEST(MemRanks, Errors) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--ranks", "4", "--pipeline-stages", "3"},
       "--pipeline-stages 3: must be at least 1 and divide the number of processes (4)"},
      {{"--ranks", "44", "--pipeline-stages", "44"},
       "--pipeline-stages 44: the model has 43 blocks, and every stage needs at least one"},
      {{"--ranks", "512"},
       "--ranks 512: 512 processes per stage share the routed experts, but the model has 256"},
      {{"--ranks", "0"}, "--ranks: must be at least 1, got 0"},
      {{"--pipeline-stages", "2"}, "--pipeline-stages requires --ranks"},
      {{"--cache", "bf16"}, "--cache requires --budget or --ranks"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"mem", "-m", kFlash, "--config-only"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const RunResult r = run(args);
    EXPECT_NE(r.rc, 0) << c.message;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace frugal
