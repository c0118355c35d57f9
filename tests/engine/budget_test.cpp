// The memory budget (engine/budget.h): slot bytes and plans on the official V4-Flash config,
// computed by hand; sizes; the decode prediction; expert profiles; the available memory read
// from a fake /proc and cgroup tree.
#include "engine/budget.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/engine.h"
#include "engine/memory_plan.h"
#include "model/v4/config.h"
#include "model/v4/tensor_table.h"
#include "support/temp_dir.h"

namespace frugal::engine {
namespace {

const std::string kRoot = FRUGAL_SOURCE_DIR;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kMiB = uint64_t{1} << 20;

v4::DeepSeekV4Config flash() {
  Result<v4::DeepSeekV4Config> c =
      v4::load_config(kRoot + "/tests/fixtures/configs/deepseek-v4-flash.json");
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return *c;
}

// FP4 experts, dim 4096, moe_inter_dim 2048: w1 and w3 are I8 [2048, 2048] = 4 MiB with e8m0
// scales [2048, 4096/32] = 256 KiB; w2 is I8 [4096, 1024] = 4 MiB with scales [4096, 64] =
// 256 KiB. Each of the six rounded to 4 KiB (already) plus one more 4 KiB.
TEST(Budget, FlashSlotBytesByHand) {
  const v4::DeepSeekV4Config c = flash();
  const uint64_t w = 4 * kMiB, s = 256 * 1024, page = 4096;
  EXPECT_EQ(expert_slot_bytes(c), 3 * ((w + page) + (s + page)));
  EXPECT_EQ(expert_slot_bytes(c), 13393920u);
  EXPECT_EQ(streamed_expert_count(c, false), 256 * 43);
  EXPECT_EQ(streamed_expert_count(c, true), 256 * 44);
}

// Resident + every routed expert + the embedding (on disk, read by rows) = the whole checkpoint;
// the MTP block's non-expert tensors are the difference between with and without MTP.
TEST(Budget, FlashResidentBytesAddUp) {
  const v4::DeepSeekV4Config c = flash();
  const v4::TensorTable table(c);
  const uint64_t expert = 3 * (4 * kMiB + 256 * 1024);  // one expert's bytes, unpadded
  const uint64_t embed = 129280u * 4096u * 2u;          // bf16 [vocab, dim]
  EXPECT_EQ(resident_weight_bytes(c, true) + 256u * 44u * expert + embed, table.total_bytes());
  uint64_t mtp_other = 0;
  for (const v4::TensorSpec& s : table.entries()) {
    if (s.block == 43 && s.expert == v4::kNoExpert) mtp_other += s.bytes();
  }
  EXPECT_EQ(resident_weight_bytes(c, true) - resident_weight_bytes(c, false), mtp_other);
  // The head alone: 129280 x 4096 bf16.
  EXPECT_GT(resident_weight_bytes(c, false), embed);
  // frugal mem's groups add up to the same total.
  const Result<BudgetPlan> p = plan_budget(c, 64 * kGiB, 0, 0, false);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  uint64_t sum = 0;
  for (const auto& [kind, bytes] : p->resident_by_kind) sum += bytes;
  EXPECT_EQ(sum, p->resident_weight_bytes);
  EXPECT_EQ(p->resident_by_kind.count("routed_experts"), 0u);
  EXPECT_EQ(p->resident_by_kind.count("mtp"), 0u);
  EXPECT_EQ(p->resident_by_kind.count("embed"), 0u);
  EXPECT_EQ(p->streamed_embed_bytes, embed);
  const Result<BudgetPlan> m = plan_budget(c, 64 * kGiB, 0, 0, true);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->resident_by_kind.at("mtp"), mtp_other);
}

TEST(Budget, PlanArithmetic) {
  const v4::DeepSeekV4Config c = flash();
  const uint64_t slot = 13393920, act = 100 * kMiB + 3, kv = 50 * kMiB + 5;
  const uint64_t fixed = resident_weight_bytes(c, false) + act + kv + kBudgetOverhead;
  const uint64_t min = fixed + 12 * slot;  // 2 x 6 activated experts
  Result<BudgetPlan> p = plan_budget(c, min, act, kv, false);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->min_budget, min);
  EXPECT_EQ(p->min_slots, 12);
  EXPECT_EQ(p->slots, 12);
  EXPECT_EQ(p->slot_bytes, slot);
  EXPECT_EQ(p->used_bytes(), min);
  EXPECT_FALSE(p->all_experts_fit());

  p = plan_budget(c, min + 5 * slot + slot - 1, act, kv, false);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->slots, 17);  // whole slots only
  EXPECT_LE(p->used_bytes(), p->budget);

  // A budget larger than the model: every expert, no more.
  p = plan_budget(c, 1024 * kGiB, act, kv, false);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->slots, 256 * 43);
  EXPECT_TRUE(p->all_experts_fit());
}

TEST(Budget, BelowMinimumNamesTheNumbers) {
  const v4::DeepSeekV4Config c = flash();
  const Result<BudgetPlan> ok = plan_budget(c, 1024 * kGiB, 0, 0, false);
  ASSERT_TRUE(ok.ok());
  const uint64_t min = ok->min_budget;
  const Result<BudgetPlan> p = plan_budget(c, min - 1, 0, 0, false);
  ASSERT_FALSE(p.ok());
  const std::string m = p.status().message();
  EXPECT_NE(m.find("--mem-budget " + format_bytes(min - 1)), std::string::npos) << m;
  EXPECT_NE(m.find("below the minimum " + format_bytes(min)), std::string::npos) << m;
  EXPECT_NE(m.find("resident weights " + format_bytes(resident_weight_bytes(c, false))),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("12 expert slots of 12.77 MiB"), std::string::npos) << m;
  EXPECT_NE(m.find(std::to_string(min) + " bytes"), std::string::npos) << m;
}

TEST(Budget, ParseSizeAccepts) {
  struct Case {
    const char* text;
    uint64_t bytes;
  };
  const Case cases[] = {
      {"8G", 8 * kGiB},
      {"8GiB", 8 * kGiB},
      {"8g", 8 * kGiB},
      {"8gib", 8 * kGiB},
      {"512M", 512 * kMiB},
      {"1.5G", 3 * kGiB / 2},
      {"123456", 123456},
      {"123456B", 123456},
      {"1K", 1024},
      {"0.5K", 512},
      {"1.1K", 1126},  // 1126.4 rounds down
      {"2T", uint64_t{2} << 40},
      {"0.25KiB", 256},
      {"18446744073709551615", UINT64_MAX},
  };
  for (const Case& c : cases) {
    const Result<uint64_t> r = parse_size(c.text, "--mem-budget");
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.status().to_string();
    EXPECT_EQ(*r, c.bytes) << c.text;
  }
}

TEST(Budget, ParseSizeRefuses) {
  const char* bad[] = {"",
                       "G",
                       "-1G",
                       "+1G",
                       " 8G",
                       "8G ",
                       "8 G",
                       "8GB",
                       "8gb",
                       "8X",
                       "8Gi",
                       "8GiBs",
                       "1.5",
                       "0",
                       "0G",
                       "0.0001",
                       "1.",
                       ".5G",
                       "1e9",
                       "0x10",
                       "99999999999T",
                       "18446744073709551616",
                       "16777216T"};
  for (const char* t : bad) {
    const Result<uint64_t> r = parse_size(t, "--budget");
    ASSERT_FALSE(r.ok()) << "'" << t << "' accepted as " << *r;
    EXPECT_EQ(r.status().message().rfind("--budget: ", 0), 0u) << r.status().message();
  }
  EXPECT_NE(parse_size("8GB", "--budget").status().message().find("write G or GiB"),
            std::string::npos);
}

TEST(Budget, PredictDecode) {
  const v4::DeepSeekV4Config c = flash();
  const double experts = 43.0 * 6.0 * 13369344.0;  // routed expert bytes one token reads
  const double all = static_cast<double>(decode_weight_bytes_per_token(c));
  DecodePrediction d = predict_decode(c, 1.0, 30.0, 2.0);
  EXPECT_DOUBLE_EQ(d.ram_bytes_per_token, all);
  EXPECT_DOUBLE_EQ(d.disk_bytes_per_token, 0.0);
  EXPECT_NEAR(d.tok_s, 30e9 / all, 1e-9);
  EXPECT_NEAR(d.overlapped_tok_s, d.tok_s, 1e-9);

  d = predict_decode(c, 0.25, 30.0, 2.0);
  const double ram = all - 0.75 * experts, disk = 0.75 * experts;
  EXPECT_NEAR(d.ram_bytes_per_token, ram, 1.0);
  EXPECT_NEAR(d.disk_bytes_per_token, disk, 1.0);
  EXPECT_NEAR(d.tok_s, 1.0 / (ram / 30e9 + disk / 2e9), 1e-9);
  EXPECT_NEAR(d.overlapped_tok_s, 1.0 / std::max(ram / 30e9, disk / 2e9), 1e-9);
  EXPECT_GT(d.overlapped_tok_s, d.tok_s);

  // Out-of-range inputs: hit rate clamped, no bandwidth no rate.
  EXPECT_DOUBLE_EQ(predict_decode(c, 1.5, 30.0, 2.0).disk_bytes_per_token, 0.0);
  EXPECT_EQ(predict_decode(c, 0.5, 0.0, 2.0).tok_s, 0.0);

  EXPECT_DOUBLE_EQ(uniform_hit_rate(1376, 11008), 0.125);
  EXPECT_DOUBLE_EQ(uniform_hit_rate(20000, 11008), 1.0);
  EXPECT_DOUBLE_EQ(uniform_hit_rate(0, 11008), 0.0);
}

TEST(Budget, ProfileParsesAndRates) {
  const Result<ExpertProfile> p =
      parse_expert_profile(R"({"model": "x", "blocks": [[10, 0, 0], [5, 5, 0]]})", "p.json");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[1][1], 5u);
  EXPECT_DOUBLE_EQ(profile_hit_rate(*p, 0), 0.0);
  EXPECT_DOUBLE_EQ(profile_hit_rate(*p, 1), 0.5);
  EXPECT_DOUBLE_EQ(profile_hit_rate(*p, 2), 0.75);
  EXPECT_DOUBLE_EQ(profile_hit_rate(*p, 3), 1.0);
  EXPECT_DOUBLE_EQ(profile_hit_rate(*p, 100), 1.0);
  EXPECT_DOUBLE_EQ(profile_hit_rate({{0, 0}}, 1), 0.0);
}

TEST(Budget, ProfileErrorsNameTheElement) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"{", "p.json: not valid JSON"},
      {"[1]", "expected a JSON object"},
      {R"({"block": []})", "missing \"blocks\""},
      {R"({"blocks": []})", "non-empty array"},
      {R"({"blocks": [1]})", "blocks[0] must be a non-empty array"},
      {R"({"blocks": [[1, 2], []]})", "blocks[1] must be a non-empty array"},
      {R"({"blocks": [[1, 2], [3]]})", "blocks[1] has 1 counts, blocks[0] 2"},
      {R"({"blocks": [[1, -2]]})", "blocks[0][1]: expected a non-negative integer count, got -2"},
      {R"({"blocks": [[1, 2.5]]})", "blocks[0][1]: expected a non-negative integer count, got 2.5"},
      {R"({"blocks": [["1"]]})", "blocks[0][0]: expected a non-negative integer"},
  };
  for (const Case& c : cases) {
    const Result<ExpertProfile> r = parse_expert_profile(c.json, "p.json");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << c.json << " -> " << r.status().message();
  }

  const v4::DeepSeekV4Config f = flash();
  const ExpertProfile ok(43, std::vector<uint64_t>(256, 1));
  EXPECT_TRUE(check_expert_profile(ok, f, "p.json").ok());
  EXPECT_TRUE(check_expert_profile(ExpertProfile(44, std::vector<uint64_t>(256, 1)), f, "p").ok());
  const Status rows = check_expert_profile(ExpertProfile(2, std::vector<uint64_t>(256, 1)), f, "p");
  EXPECT_NE(rows.message().find("2 blocks, the model has 43"), std::string::npos) << rows.message();
  const Status cols = check_expert_profile(ExpertProfile(43, std::vector<uint64_t>(8, 1)), f, "p");
  EXPECT_NE(cols.message().find("8 experts per block, the model has 256"), std::string::npos)
      << cols.message();
  const Status zero =
      check_expert_profile(ExpertProfile(43, std::vector<uint64_t>(256, 0)), f, "p");
  EXPECT_NE(zero.message().find("every count is 0"), std::string::npos);
}

TEST(Budget, ProfileFiles) {
  test::ScopedTempDir dir("budget");
  EXPECT_NE(load_expert_profile(dir.file("absent.json")).status().message().find("absent.json"),
            std::string::npos);
  { std::ofstream(dir.file("p.json")) << R"({"blocks": [[3, 1]]})"; }
  const Result<ExpertProfile> p = load_expert_profile(dir.file("p.json"));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_DOUBLE_EQ(profile_hit_rate(*p, 1), 0.75);
  // Too large: refused before reading (a sparse file).
  { std::ofstream(dir.file("big.json")) << "{"; }
  std::filesystem::resize_file(dir.file("big.json"), kMaxExpertProfileBytes + 1);
  const Status big = load_expert_profile(dir.file("big.json")).status();
  EXPECT_NE(big.message().find("larger than the 64 MiB accepted"), std::string::npos)
      << big.message();
}

// ---- the available memory, on a fake tree laid out like /proc and /sys/fs/cgroup ----

void put(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

constexpr const char* kMountinfo =
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(Budget, AvailabilityCgroupV1Hierarchy) {
  test::ScopedTempDir root("budget-v1");
  const std::filesystem::path r = root.path();
  put(r / "proc/meminfo", "MemTotal: 24000000 kB\nMemAvailable:   20000000 kB\n");
  put(r / "proc/self/cgroup", "4:memory:/jobs/job1\n1:cpu:/\n0::/\n");
  put(r / "proc/self/mountinfo", kMountinfo);
  const std::filesystem::path mem = r / "sys/fs/cgroup/memory";
  put(mem / "memory.limit_in_bytes", "9223372036854771712\n");  // the root: unlimited
  put(mem / "memory.usage_in_bytes", "5000000000\n");
  // The parent limits to 8 GiB; the job itself is unlimited. Usage 3 GiB of which 1 GiB
  // inactive file cache.
  put(mem / "jobs/memory.limit_in_bytes", std::to_string(8 * kGiB) + "\n");
  put(mem / "jobs/memory.usage_in_bytes", std::to_string(3 * kGiB) + "\n");
  put(mem / "jobs/memory.stat",
      "cache 100\ninactive_file 7\ntotal_inactive_file " + std::to_string(kGiB) + "\n");
  put(mem / "jobs/job1/memory.limit_in_bytes", "9223372036854771712\n");
  put(mem / "jobs/job1/memory.usage_in_bytes", "1000\n");

  const MemoryAvailability m = probe_memory_availability(r.string());
  EXPECT_EQ(m.mem_available, uint64_t{20000000} * 1024);
  EXPECT_EQ(m.cgroup_version, 1);
  EXPECT_EQ(m.cgroup_dir, "/sys/fs/cgroup/memory/jobs");
  EXPECT_EQ(m.cgroup_limit, 8 * kGiB);
  EXPECT_EQ(m.cgroup_usage, 2 * kGiB);
  EXPECT_EQ(m.available(), 6 * kGiB);

  // A limit tighter than MemAvailable's headroom elsewhere: MemAvailable wins when lower.
  put(r / "proc/meminfo", "MemAvailable: 1024 kB\n");
  EXPECT_EQ(probe_memory_availability(r.string()).available(), 1024u * 1024u);
}

TEST(Budget, AvailabilityCgroupV2) {
  test::ScopedTempDir root("budget-v2");
  const std::filesystem::path r = root.path();
  put(r / "proc/meminfo", "MemAvailable: 20000000 kB\n");
  put(r / "proc/self/cgroup", "0::/user.slice/run.scope\n");
  put(r / "proc/self/mountinfo",
      "25 20 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
  const std::filesystem::path cg = r / "sys/fs/cgroup";
  put(cg / "user.slice/memory.max", "max\n");
  put(cg / "user.slice/memory.current", "999\n");
  put(cg / "user.slice/run.scope/memory.max", std::to_string(4 * kGiB) + "\n");
  put(cg / "user.slice/run.scope/memory.current", std::to_string(kGiB) + "\n");
  put(cg / "user.slice/run.scope/memory.stat", "anon 5\ninactive_file 1048576\n");
  const MemoryAvailability m = probe_memory_availability(r.string());
  EXPECT_EQ(m.cgroup_version, 2);
  EXPECT_EQ(m.cgroup_dir, "/sys/fs/cgroup/user.slice/run.scope");
  EXPECT_EQ(m.cgroup_usage, kGiB - kMiB);
  EXPECT_EQ(m.available(), 3 * kGiB + kMiB);
}

TEST(Budget, AvailabilityWithoutLimits) {
  test::ScopedTempDir root("budget-none");
  const std::filesystem::path r = root.path();
  put(r / "proc/meminfo", "MemAvailable: 2048 kB\n");
  put(r / "proc/self/cgroup", "4:memory:/\n0::/\n");
  put(r / "proc/self/mountinfo", kMountinfo);
  put(r / "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  put(r / "sys/fs/cgroup/memory/memory.usage_in_bytes", "5\n");
  const MemoryAvailability m = probe_memory_availability(r.string());
  EXPECT_EQ(m.cgroup_version, 0);
  EXPECT_EQ(m.available(), 2048u * 1024u);
  // Nothing readable at all: unknown.
  EXPECT_EQ(probe_memory_availability(root.file("nowhere")).available(), 0u);
}

TEST(Budget, AvailabilityOnThisMachine) {
  const uint64_t a = memory_available_for_budget();
  EXPECT_GT(a, 0u);
  EXPECT_LE(a, mem_available_bytes() + 64 * kMiB);  // MemAvailable moves between the reads
}

}  // namespace
}  // namespace frugal::engine
