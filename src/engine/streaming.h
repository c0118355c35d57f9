// Internal to src/engine: the memory budget wired into Engine::load (docs/STREAMING.md). Decides
// whether the routed experts stream (a budget given, or the model larger than the memory
// available), and after the resident part is loaded sizes the expert cache from the budget plan,
// creates it and the embedding's row reader, drops the page cache the load left behind, and
// hands both to the model.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "engine/budget.h"
#include "engine/engine.h"
#include "stream/embed_rows.h"
#include "stream/expert_cache.h"

namespace frugal::engine {

struct StreamDecision {
  bool stream = false;
  uint64_t budget = 0;     // bytes (when stream)
  uint64_t available = 0;  // memory_available_for_budget() at start, 0 unknown
  bool derived = false;    // the budget was derived from `available`, not given
};

// From the options and config.json alone (nothing loaded yet): a given budget below the minimum
// (resident part, kv, overhead and the minimum slots) fails here, before the load. With a shard
// (one process of a parallel run) the budget is that process's: its resident tensors, its
// experts, its blocks' kv; a derived budget is its part of the memory available on its machine
// (shared equally by the run's processes there).
Result<StreamDecision> decide_streaming(const EngineOptions& options,
                                        const v4::DeepSeekV4Config& config,
                                        const v4::Shard* shard = nullptr);

// The budget plan of `budget` for a model of `config` loaded with `options` (and `shard`), its
// arena computed from the config as Model::create will size it: what decide_streaming checks;
// tests size a budget from its min_budget and slot_bytes.
Result<BudgetPlan> plan_budget_for(const EngineOptions& options, const v4::DeepSeekV4Config& config,
                                   const v4::Shard* shard, uint64_t budget);

struct StreamSetup {
  BudgetPlan plan;
  std::unique_ptr<stream::ExpertCache> cache;
  std::unique_ptr<stream::EmbedRows> embed;  // when the process holds the embedding
  std::string summary;  // one line for the user
};

// After the resident part is loaded (model created with streamed experts).
Result<StreamSetup> start_streaming(const StreamDecision& d, const EngineOptions& options,
                                    v4::Model& model);

}  // namespace frugal::engine
