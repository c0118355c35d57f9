#include "model/v4/shard.h"

namespace frugal::v4 {
namespace {

// Part `i` of `parts` of [0, total): starts at floor(i * total / parts).
int32_t split_begin(int64_t total, int64_t parts, int64_t i) {
  return static_cast<int32_t>(i * total / parts);
}

}  // namespace

int32_t Shard::expert_begin(int32_t of_expert_rank) const {
  return split_begin(n_routed_experts, expert_ranks, of_expert_rank);
}

std::string Shard::describe() const {
  std::string s = "rank " + std::to_string(rank) + " of " + std::to_string(ranks);
  if (stages > 1) {
    s += ": stage " + std::to_string(stage) + " of " + std::to_string(stages) + " (blocks " +
         std::to_string(first_block) + "-" + std::to_string(end_block - 1) + ")";
  }
  if (expert_ranks > 1) {
    s += std::string(stages > 1 ? ", " : ": ") + "experts " + std::to_string(first_expert) + "-" +
         std::to_string(end_expert - 1) + " of " + std::to_string(n_routed_experts);
  }
  return s;
}

bool holds_tensor(const Shard& shard, const TensorSpec& spec) {
  if (spec.block == kNoBlock) {
    return spec.kind == TensorKind::kEmbed ? shard.holds_embedding() : shard.holds_head();
  }
  return shard.holds_block(spec.block) &&
         (spec.expert == kNoExpert || shard.holds_expert(spec.expert));
}

Shard whole_model(const DeepSeekV4Config& config) {
  Shard s;
  s.end_block = static_cast<int32_t>(config.n_layers);
  s.end_expert = static_cast<int32_t>(config.n_routed_experts);
  s.n_routed_experts = s.end_expert;
  s.n_layers = static_cast<int32_t>(config.n_layers);
  s.n_blocks = static_cast<int32_t>(config.n_blocks());
  return s;
}

Result<Shard> make_shard(const DeepSeekV4Config& config, int32_t rank, int32_t ranks,
                         int32_t stages) {
  if (ranks < 1 || rank < 0 || rank >= ranks) {
    return invalid_argument("parallel: rank " + std::to_string(rank) + " of " +
                            std::to_string(ranks) + " processes");
  }
  if (stages < 1 || ranks % stages != 0) {
    return invalid_argument("--pipeline-stages " + std::to_string(stages) +
                            ": must be at least 1 and divide the number of processes (" +
                            std::to_string(ranks) + ")");
  }
  if (stages > config.n_layers) {
    return invalid_argument("--pipeline-stages " + std::to_string(stages) + ": the model has " +
                            std::to_string(config.n_layers) +
                            " blocks, and every stage needs at least one");
  }
  Shard s = whole_model(config);
  s.rank = rank;
  s.ranks = ranks;
  s.stages = stages;
  s.expert_ranks = ranks / stages;
  if (s.expert_ranks > config.n_routed_experts) {
    return invalid_argument(std::to_string(s.expert_ranks) +
                            " processes per stage share the routed experts, but the model has " +
                            std::to_string(config.n_routed_experts));
  }
  s.stage = rank / s.expert_ranks;
  s.expert_rank = rank % s.expert_ranks;
  s.first_block = split_begin(config.n_layers, stages, s.stage);
  s.end_block = split_begin(config.n_layers, stages, s.stage + 1);
  s.first_expert = s.expert_begin(s.expert_rank);
  s.end_expert = s.expert_begin(s.expert_rank + 1);
  return s;
}

}  // namespace frugal::v4
