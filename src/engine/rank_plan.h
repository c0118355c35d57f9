// What each process of a parallel run holds (docs/PARALLEL.md, model/v4/shard.h): for `ranks`
// processes in `stages` pipeline stages, every rank's Shard, its weight bytes by group (the
// groups of frugal mem, weight_group) counting only the tensors it holds, and its kv cache at a
// context length (its held blocks only, kv_bytes_at with the shard).
//
// A tensor is held by a rank when (v4::holds_tensor):
//   embed: the first stage; head, norm, hc_head*: the last stage;
//   a tensor of block b: the stage that holds b (MTP blocks: every rank of a one-stage run, no
//   rank otherwise); a routed expert's tensors only by the rank whose expert range holds it.
// So every non-expert tensor of a held block, and the embedding and head, are replicated on the
// stage's expert_ranks processes, each routed expert is held once, and with stages > 1 the MTP
// blocks are held by no one (only a one-stage run holds them). Sum over ranks = one process -
// not held + replicated.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/memory_plan.h"
#include "kv/v4_entry.h"
#include "model/v4/config.h"
#include "model/v4/shard.h"
#include "model/v4/tensor_table.h"

namespace frugal::engine {

struct RankMemory {
  v4::Shard shard;
  uint64_t weights_bytes = 0;
  std::map<std::string, uint64_t> weights_by_kind;  // weight_group names; groups held only
  KvBytes kv;                                       // at RankPlan::ctx, RankPlan::format
  uint64_t total() const { return weights_bytes + kv.total(); }
};

struct RankPlan {
  int32_t ranks = 1, stages = 1;
  int64_t ctx = 0;
  kv::CacheFormat format = kv::CacheFormat::kFp8;
  std::vector<RankMemory> per_rank;  // [ranks], by rank
  // One process (plan_memory's weights_bytes, kv_bytes_at), and what of it no rank holds.
  uint64_t whole_weights_bytes = 0, whole_kv_bytes = 0;
  uint64_t unheld_weights_bytes = 0, unheld_kv_bytes = 0;
  int32_t largest = 0;  // the rank with the largest total (the first of equals)

  uint64_t sum_weights_bytes() const;
  uint64_t sum_kv_bytes() const;
  uint64_t sum_total() const { return sum_weights_bytes() + sum_kv_bytes(); }
  // Bytes held more than once: sum over ranks - (one process - not held).
  uint64_t replicated_weights_bytes() const {
    return sum_weights_bytes() - (whole_weights_bytes - unheld_weights_bytes);
  }
  uint64_t replicated_kv_bytes() const {
    return sum_kv_bytes() - (whole_kv_bytes - unheld_kv_bytes);
  }
};

// The weight bytes one process holds (the tensor table's bytes of what holds_tensor says): one
// rank's RankMemory::weights_bytes without planning the others.
uint64_t shard_weight_bytes(const v4::DeepSeekV4Config& c, const v4::Shard& shard);

// The plan of every rank; make_shard's errors (stages that do not divide ranks, more stages than
// main blocks, more processes per stage than routed experts) as they are.
Result<RankPlan> plan_ranks(const v4::DeepSeekV4Config& c, int32_t ranks, int32_t stages,
                            int64_t ctx, kv::CacheFormat format);

}  // namespace frugal::engine
