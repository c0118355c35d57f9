#include "engine/streaming.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "engine/memory_plan.h"
#include "engine/rank_plan.h"
#include "parallel/world.h"

namespace frugal::engine {
namespace {

// Headroom left of the memory available when the budget is derived: other processes, the page
// cache of files frugal does not read with O_DIRECT (tokenizer, config).
constexpr double kDerivedShare = 0.9;

uint64_t kv_reserve(const EngineOptions& o, const v4::DeepSeekV4Config& c, const v4::Shard* shard) {
  const KvBytes kv = shard != nullptr ? kv_bytes_at(c, o.cache, o.max_seq_len, *shard)
                                      : kv_bytes_at(c, o.cache, o.max_seq_len);
  return kv.total() * static_cast<uint64_t>(std::max<int64_t>(1, o.max_batch)) + o.reserve_bytes;
}

// The hottest (block, expert) pairs of a profile, hottest first.
std::vector<std::pair<int32_t, int32_t>> hottest(const ExpertProfile& p) {
  std::vector<std::pair<int32_t, int32_t>> out;
  for (size_t b = 0; b < p.size(); ++b) {
    for (size_t e = 0; e < p[b].size(); ++e) {
      if (p[b][e] > 0) out.emplace_back(static_cast<int32_t>(b), static_cast<int32_t>(e));
    }
  }
  std::stable_sort(out.begin(), out.end(), [&](auto x, auto y) {
    return p[static_cast<size_t>(x.first)][static_cast<size_t>(x.second)] >
           p[static_cast<size_t>(y.first)][static_cast<size_t>(y.second)];
  });
  return out;
}

}  // namespace

Result<BudgetPlan> plan_budget_for(const EngineOptions& o, const v4::DeepSeekV4Config& c,
                                   const v4::Shard* shard, uint64_t budget) {
  const uint64_t arena = v4::Model::scratch_bytes_for(c, model_options(o), true);
  return plan_budget(c, budget, arena, kv_reserve(o, c, shard), true, shard);
}

Result<StreamDecision> decide_streaming(const EngineOptions& o, const v4::DeepSeekV4Config& c,
                                        const v4::Shard* shard) {
  StreamDecision d;
  if (o.stream_experts == StreamExperts::kNever) return d;
  d.available = memory_available_for_budget() /
                static_cast<uint64_t>(std::max(1, parallel::processes_on_this_machine()));
  const uint64_t kv = kv_reserve(o, c, shard);
  if (o.mem_budget.has_value()) {
    d.stream = true;
    d.budget = *o.mem_budget;
  } else {
    // Derived: stream only when the whole model (with its kv and overhead) does not fit.
    const uint64_t arena = v4::Model::scratch_bytes_for(c, model_options(o), false);
    const uint64_t weights = shard != nullptr ? shard_weight_bytes(c, *shard)
                                              : plan_memory(c, o.max_seq_len).weights_bytes;
    const uint64_t whole = weights + arena + kv + kBudgetOverhead;
    if (d.available == 0 || whole <= d.available) return d;
    d.stream = true;
    d.derived = true;
    d.budget = static_cast<uint64_t>(kDerivedShare * static_cast<double>(d.available));
  }
  Result<BudgetPlan> p = plan_budget_for(o, c, shard, d.budget);
  if (!p.ok()) {
    return d.derived ? p.status().with_context("the model does not fit in the memory available (" +
                                               format_bytes(d.available) +
                                               ") and streaming its experts needs more")
                     : p.status();
  }
  return d;
}

Result<StreamSetup> start_streaming(const StreamDecision& d, const EngineOptions& o,
                                    v4::Model& model) {
  const v4::DeepSeekV4Config& c = model.config();
  const v4::Shard* shard = model.weights().shard.whole() ? nullptr : &model.weights().shard;
  StreamSetup s;
  FRUGAL_ASSIGN_OR_RETURN(s.plan, plan_budget(c, d.budget, model.scratch_bytes(),
                                              kv_reserve(o, c, shard), true, shard));
  stream::ExpertCacheOptions co;
  co.slots = s.plan.slots;
  co.prefetch = o.prefetch_experts;
  co.direct_io = o.direct_io;
  if (!o.expert_profile.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(ExpertProfile prof, load_expert_profile(o.expert_profile));
    FRUGAL_RETURN_IF_ERROR(check_expert_profile(prof, c, o.expert_profile));
    co.pinned = hottest(prof);
  }
  FRUGAL_ASSIGN_OR_RETURN(s.cache, stream::ExpertCache::create(model.weights(), co));
  if (model.weights().streamed_embed) {
    FRUGAL_ASSIGN_OR_RETURN(
        s.embed, stream::EmbedRows::create(model.weights(), o.direct_io, s.cache->files()));
    model.set_embed_source(s.embed.get());
  }
  s.cache->drop_page_cache();
  model.set_expert_source(s.cache.get());
  char line[512];
  std::snprintf(
      line, sizeof(line),
      "memory budget %s%s: resident weights %s, activations %s, kv %s, %lld expert "
      "slots of %s (of %lld experts; %lld pinned)%s, %s reads",
      format_bytes(d.budget).c_str(),
      d.derived ? (" (derived: 90% of " + format_bytes(d.available) + " available)").c_str() : "",
      format_bytes(model.weights().placed_stats.bytes() + model.weights().owned_stats.bytes())
          .c_str(),
      format_bytes(model.scratch_bytes()).c_str(), format_bytes(kv_reserve(o, c, shard)).c_str(),
      static_cast<long long>(s.cache->slots()), format_bytes(s.cache->slot_bytes()).c_str(),
      static_cast<long long>(s.plan.streamed_experts), static_cast<long long>(s.cache->pinned()),
      s.embed != nullptr
          ? (", embedding (" + format_bytes(s.plan.streamed_embed_bytes) + ") read by rows").c_str()
          : "",
      s.cache->direct_io() ? "O_DIRECT" : "buffered (no O_DIRECT on this file system)");
  s.summary = line;
  return s;
}

}  // namespace frugal::engine
