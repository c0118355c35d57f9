// What one process of a parallel run holds (docs/PARALLEL.md). A run of `ranks` processes is
// `stages` pipeline stages of `ranks / stages` processes each:
//
//   rank = stage * expert_ranks + expert_rank
//
// - Pipeline parallel: stage s holds the main blocks [first_block, end_block), a balanced split of
//   n_layers; the first stage also holds the embedding, the last the head (norm, hc_head, head)
//   and, when there is a single stage, the MTP blocks.
// - Expert parallel: within its blocks, a process holds the routed experts [first_expert,
//   end_expert), a balanced split of n_routed_experts over the stage's processes; everything else
//   of those blocks (attention, compressors, indexer, router, shared expert, mHC, norms) is held
//   by every process of the stage, which all run it on the same rows.
//
// One process (the default Shard{} made by whole_model) holds everything.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "model/v4/config.h"
#include "model/v4/tensor_table.h"

namespace frugal::v4 {

struct Shard {
  int32_t rank = 0, ranks = 1;
  int32_t stage = 0, stages = 1;
  int32_t expert_rank = 0, expert_ranks = 1;
  int32_t first_block = 0, end_block = 0;    // main blocks held: [first, end)
  int32_t first_expert = 0, end_expert = 0;  // routed experts held in each of those blocks
  int32_t n_layers = 0;                      // main blocks of the model
  int32_t n_blocks = 0;                      // main + MTP blocks of the model
  int32_t n_routed_experts = 0;              // of each block

  bool operator==(const Shard&) const = default;
  bool whole() const { return ranks == 1; }
  bool first_stage() const { return stage == 0; }
  bool last_stage() const { return stage == stages - 1; }
  bool holds_embedding() const { return first_stage(); }
  bool holds_head() const { return last_stage(); }
  // Main blocks in [first_block, end_block); MTP blocks on the last stage of a one-stage run.
  bool holds_block(int64_t block) const {
    if (block >= n_layers) return stages == 1 && block < n_blocks;
    return block >= first_block && block < end_block;
  }
  bool holds_expert(int64_t expert) const { return expert >= first_expert && expert < end_expert; }
  // The routed experts process `expert_rank` of a stage holds: [first, end).
  int32_t expert_begin(int32_t of_expert_rank) const;
  // "rank 1 of 4: stage 0 of 2 (blocks 0-5), experts 128-255 of 256".
  std::string describe() const;
};

// Whether the process holds tensor `spec` (the embedding on the first stage; the head, its norm
// and hc_head on the last; a block's tensors where it holds the block, a routed expert's where it
// holds the expert too).
bool holds_tensor(const Shard& shard, const TensorSpec& spec);

// The whole model in one process.
Shard whole_model(const DeepSeekV4Config& config);

// Process `rank` of `ranks` in `stages` pipeline stages (ranks divisible by stages); each stage
// needs at least one main block and each process at least one routed expert. Errors name the
// numbers and the limit.
Result<Shard> make_shard(const DeepSeekV4Config& config, int32_t rank, int32_t ranks,
                         int32_t stages);

}  // namespace frugal::v4
