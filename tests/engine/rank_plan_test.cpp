// What each rank of a parallel run holds (engine/rank_plan.h) against the single-process memory
// plan, for the official V4-Flash config and the shipped tiny model: one rank is the whole
// model; expert parallelism splits the routed experts and replicates the rest; a pipeline splits
// the blocks and holds the MTP blocks nowhere; every tensor is held by exactly the ranks the
// Shard rules name; and make_shard's limits are errors.
#include "engine/rank_plan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/memory_plan.h"
#include "model/v4/config.h"
#include "model/v4/tensor_table.h"

namespace frugal::engine {
namespace {

using v4::TensorSpec;

const std::string kRoot = FRUGAL_SOURCE_DIR;
constexpr int64_t kCtx = 4096;
constexpr kv::CacheFormat kFp8 = kv::CacheFormat::kFp8;

v4::DeepSeekV4Config load(const std::string& rel) {
  Result<v4::DeepSeekV4Config> c = v4::load_config(kRoot + "/" + rel);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return *c;
}

std::vector<v4::DeepSeekV4Config> configs() {
  return {load("tests/fixtures/configs/deepseek-v4-flash.json"),
          load("models/tiny-v4/config.json")};
}

RankPlan plan(const v4::DeepSeekV4Config& c, int32_t ranks, int32_t stages) {
  Result<RankPlan> p = plan_ranks(c, ranks, stages, kCtx, kFp8);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return *p;
}

bool is_mtp(const v4::DeepSeekV4Config& c, const TensorSpec& t) {
  return t.block != v4::kNoBlock && t.block >= c.n_layers;
}
bool is_routed_expert(const TensorSpec& t) { return t.expert != v4::kNoExpert; }

// Bytes of the tensors of `c` for which `pred` holds.
template <typename Pred>
uint64_t bytes_where(const v4::DeepSeekV4Config& c, Pred pred) {
  const v4::TensorTable table(c);
  uint64_t b = 0;
  for (const TensorSpec& t : table.entries()) b += pred(t) ? t.bytes() : 0;
  return b;
}

TEST(RankPlan, OneRankIsTheWholeModel) {
  for (const v4::DeepSeekV4Config& c : configs()) {
    const MemoryPlan whole = plan_memory(c, kCtx);
    const RankPlan p = plan(c, 1, 1);
    ASSERT_EQ(p.per_rank.size(), 1u);
    const RankMemory& r = p.per_rank[0];
    EXPECT_TRUE(r.shard.whole());
    EXPECT_EQ(r.weights_bytes, whole.weights_bytes);
    EXPECT_EQ(r.weights_by_kind, whole.weights_by_kind);
    EXPECT_EQ(r.kv.total(), whole.kv_fp8.total());
    EXPECT_EQ(p.whole_weights_bytes, whole.weights_bytes);
    EXPECT_EQ(p.whole_kv_bytes, whole.kv_fp8.total());
    EXPECT_EQ(p.replicated_weights_bytes(), 0u);
    EXPECT_EQ(p.replicated_kv_bytes(), 0u);
    EXPECT_EQ(p.unheld_weights_bytes + p.unheld_kv_bytes, 0u);
  }
}

// N = 4, S = 1: every rank holds every block (MTP included), the embedding and the head, and a
// quarter of the routed experts of each block (256 / 4 = 64 for Flash, 8 / 4 = 2 for the tiny
// model; the experts of a block are of one size, so a quarter of the bytes). So a rank's
// non-expert bytes are the whole model's, its routed-expert bytes (main and MTP) a quarter.
TEST(RankPlan, ExpertParallelSplitsTheRoutedExperts) {
  for (const v4::DeepSeekV4Config& c : configs()) {
    const MemoryPlan whole = plan_memory(c, kCtx);
    const RankPlan p = plan(c, 4, 1);
    ASSERT_EQ(p.per_rank.size(), 4u);
    const uint64_t experts =
        bytes_where(c, [](const TensorSpec& t) { return is_routed_expert(t); });
    const uint64_t non_expert = whole.weights_bytes - experts;
    const uint64_t mtp_experts =
        bytes_where(c, [&](const TensorSpec& t) { return is_mtp(c, t) && is_routed_expert(t); });
    const uint64_t mtp_non_expert = whole.weights_by_kind.at("mtp") - mtp_experts;
    ASSERT_EQ(experts % 4, 0u);
    ASSERT_EQ(mtp_experts % 4, 0u);

    uint64_t routed_sum = 0, mtp_sum = 0;
    for (const RankMemory& r : p.per_rank) {
      EXPECT_EQ(r.shard.end_expert - r.shard.first_expert, c.n_routed_experts / 4);
      EXPECT_EQ(r.weights_by_kind.at("routed_experts"),
                whole.weights_by_kind.at("routed_experts") / 4);
      EXPECT_EQ(r.weights_by_kind.at("mtp"), mtp_non_expert + mtp_experts / 4);
      EXPECT_EQ(r.weights_bytes, non_expert + experts / 4);
      // Every other group (attention, shared_experts, embed, head, ...) as in one process.
      for (const auto& [kind, bytes] : whole.weights_by_kind) {
        if (kind == "routed_experts" || kind == "mtp") continue;
        EXPECT_EQ(r.weights_by_kind.at(kind), bytes) << kind;
      }
      EXPECT_EQ(r.kv.total(), whole.kv_fp8.total());  // every block's cache on every rank
      routed_sum += r.weights_by_kind.at("routed_experts");
      mtp_sum += r.weights_by_kind.at("mtp");
    }
    EXPECT_EQ(routed_sum, whole.weights_by_kind.at("routed_experts"));
    EXPECT_EQ(mtp_sum, 4 * mtp_non_expert + mtp_experts);
    EXPECT_EQ(p.unheld_weights_bytes, 0u);
    EXPECT_EQ(p.replicated_weights_bytes(), 3 * non_expert);
    EXPECT_EQ(p.replicated_kv_bytes(), 3 * whole.kv_fp8.total());
    EXPECT_EQ(p.sum_weights_bytes(), whole.weights_bytes + 3 * non_expert);
  }
}

// N = 4, S = 2: ranks 0, 1 are stage 0 (blocks [0, n_layers / 2), the embedding), ranks 2, 3
// stage 1 (the rest, the head); within a stage, experts [0, E/2) and [E/2, E). A non-expert
// tensor of a main block, the embedding and the head are held by the 2 ranks of their stage, a
// routed expert by exactly 1, an MTP tensor by none.
TEST(RankPlan, PipelineHoldsEveryTensorOnTheRightRanks) {
  for (const v4::DeepSeekV4Config& c : configs()) {
    const RankPlan p = plan(c, 4, 2);
    ASSERT_EQ(p.per_rank.size(), 4u);
    const int32_t half = static_cast<int32_t>(c.n_layers / 2);
    const int32_t e_half = static_cast<int32_t>(c.n_routed_experts / 2);
    for (const RankMemory& r : p.per_rank) {
      const int32_t stage = r.shard.rank / 2;
      EXPECT_EQ(r.shard.stage, stage);
      EXPECT_EQ(r.shard.first_block, stage == 0 ? 0 : half);
      EXPECT_EQ(r.shard.end_block, stage == 0 ? half : c.n_layers);
      EXPECT_EQ(r.shard.first_expert, (r.shard.rank % 2) * e_half);
      EXPECT_EQ(r.weights_by_kind.count("mtp"), 0u);
      EXPECT_EQ(r.weights_by_kind.count("embed"), stage == 0 ? 1u : 0u);
      EXPECT_EQ(r.weights_by_kind.count("head"), stage == 1 ? 1u : 0u);
    }

    const v4::TensorTable table(c);
    uint64_t held_once_or_more = 0, replicated = 0;
    for (const TensorSpec& t : table.entries()) {
      std::vector<int32_t> holders;
      for (const RankMemory& r : p.per_rank) {
        if (v4::holds_tensor(r.shard, t)) holders.push_back(r.shard.rank);
      }
      std::vector<int32_t> expected;
      if (is_mtp(c, t)) {
        // held by no rank
      } else if (t.block == v4::kNoBlock) {
        expected = t.kind == v4::TensorKind::kEmbed ? std::vector<int32_t>{0, 1}
                                                    : std::vector<int32_t>{2, 3};
      } else {
        const int32_t stage = t.block < half ? 0 : 1;
        if (is_routed_expert(t)) {
          expected = {2 * stage + (t.expert < e_half ? 0 : 1)};
        } else {
          expected = {2 * stage, 2 * stage + 1};
        }
      }
      EXPECT_EQ(holders, expected) << t.name;
      if (!holders.empty()) held_once_or_more += t.bytes();
      if (holders.size() > 1) replicated += (holders.size() - 1) * t.bytes();
    }
    const MemoryPlan whole = plan_memory(c, kCtx);
    EXPECT_EQ(p.unheld_weights_bytes, whole.weights_by_kind.at("mtp"));
    EXPECT_EQ(held_once_or_more, whole.weights_bytes - whole.weights_by_kind.at("mtp"));
    EXPECT_EQ(p.replicated_weights_bytes(), replicated);
    EXPECT_EQ(p.sum_weights_bytes(), held_once_or_more + replicated);

    // The cache: each stage's blocks on both its ranks; the MTP blocks' nowhere.
    EXPECT_EQ(p.per_rank[0].kv.total(), p.per_rank[1].kv.total());
    EXPECT_EQ(p.per_rank[2].kv.total(), p.per_rank[3].kv.total());
    const uint64_t stages_kv = p.per_rank[0].kv.total() + p.per_rank[2].kv.total();
    EXPECT_EQ(stages_kv + p.unheld_kv_bytes, whole.kv_fp8.total());
    EXPECT_GT(p.unheld_kv_bytes, 0u);
    EXPECT_EQ(p.sum_kv_bytes(), 2 * stages_kv);
    EXPECT_EQ(p.replicated_kv_bytes(), stages_kv);
  }
}

// One shard's bytes alone (the engine's budget decision) equal that rank's in the full plan.
TEST(RankPlan, ShardWeightBytesIsOneRanksPlan) {
  for (const v4::DeepSeekV4Config& c : configs()) {
    for (const auto& [ranks, stages] : {std::pair{1, 1}, {4, 1}, {4, 2}}) {
      const RankPlan p = plan(c, ranks, stages);
      for (const RankMemory& r : p.per_rank) {
        EXPECT_EQ(shard_weight_bytes(c, r.shard), r.weights_bytes) << r.shard.describe();
      }
    }
  }
}

TEST(RankPlan, ShardLimitsAreErrors) {
  for (const v4::DeepSeekV4Config& c : configs()) {
    const int32_t layers = static_cast<int32_t>(c.n_layers);
    const int32_t experts = static_cast<int32_t>(c.n_routed_experts);
    struct Case {
      int32_t ranks, stages;
      std::string message;
    };
    const std::vector<Case> cases = {
        {4, 3, "--pipeline-stages 3: must be at least 1 and divide the number of processes (4)"},
        {4, 0, "--pipeline-stages 0: must be at least 1"},
        {layers + 1, layers + 1,
         "--pipeline-stages " + std::to_string(layers + 1) + ": the model has " +
             std::to_string(layers) + " blocks"},
        {2 * experts, 1,
         std::to_string(2 * experts) +
             " processes per stage share the routed experts, but the model has " +
             std::to_string(experts)},
        {0, 1, "rank 0 of 0 processes"},
    };
    for (const Case& k : cases) {
      const Result<RankPlan> p = plan_ranks(c, k.ranks, k.stages, kCtx, kFp8);
      ASSERT_FALSE(p.ok()) << k.message;
      EXPECT_NE(p.status().message().find(k.message), std::string::npos) << p.status().message();
    }
  }
}

}  // namespace
}  // namespace frugal::engine
