#include "engine/rank_plan.h"

#include <utility>

namespace frugal::engine {

uint64_t RankPlan::sum_weights_bytes() const {
  uint64_t s = 0;
  for (const RankMemory& r : per_rank) s += r.weights_bytes;
  return s;
}

uint64_t RankPlan::sum_kv_bytes() const {
  uint64_t s = 0;
  for (const RankMemory& r : per_rank) s += r.kv.total();
  return s;
}

uint64_t shard_weight_bytes(const v4::DeepSeekV4Config& c, const v4::Shard& shard) {
  uint64_t bytes = 0;
  const v4::TensorTable table(c);
  for (const v4::TensorSpec& t : table.entries()) {
    if (v4::holds_tensor(shard, t)) bytes += t.bytes();
  }
  return bytes;
}

Result<RankPlan> plan_ranks(const v4::DeepSeekV4Config& c, int32_t ranks, int32_t stages,
                            int64_t ctx, kv::CacheFormat format) {
  RankPlan p;
  p.ranks = ranks;
  p.stages = stages;
  p.ctx = ctx;
  p.format = format;
  if (ranks < 1) return v4::make_shard(c, 0, ranks, stages).status();  // its error
  p.per_rank.reserve(static_cast<size_t>(ranks));
  for (int32_t rank = 0; rank < ranks; ++rank) {
    FRUGAL_ASSIGN_OR_RETURN(v4::Shard shard, v4::make_shard(c, rank, ranks, stages));
    RankMemory m;
    m.shard = shard;
    m.kv = kv_bytes_at(c, format, ctx, shard);
    p.per_rank.push_back(std::move(m));
  }

  // One walk of the table: each tensor's bytes to the ranks that hold it. A tensor held by no
  // rank (MTP blocks under a pipeline) is counted as not held.
  const v4::TensorTable table(c);
  for (const v4::TensorSpec& t : table.entries()) {
    const uint64_t b = t.bytes();
    p.whole_weights_bytes += b;
    bool held = false;
    for (RankMemory& m : p.per_rank) {
      if (!v4::holds_tensor(m.shard, t)) continue;
      held = true;
      m.weights_bytes += b;
      m.weights_by_kind[weight_group(t, c.n_layers)] += b;
    }
    if (!held) p.unheld_weights_bytes += b;
  }

  // Stages hold disjoint main blocks that cover the model, so what no rank holds of the cache is
  // one process's minus the first rank of every stage's (the MTP blocks when stages > 1).
  p.whole_kv_bytes = kv_bytes_at(c, format, ctx).total();
  uint64_t stages_kv = 0;
  for (const RankMemory& m : p.per_rank) {
    if (m.shard.expert_rank == 0) stages_kv += m.kv.total();
  }
  p.unheld_kv_bytes = p.whole_kv_bytes - stages_kv;
  for (size_t r = 1; r < p.per_rank.size(); ++r) {
    if (p.per_rank[r].total() > p.per_rank[static_cast<size_t>(p.largest)].total()) {
      p.largest = static_cast<int32_t>(r);
    }
  }
  return p;
}

}  // namespace frugal::engine
