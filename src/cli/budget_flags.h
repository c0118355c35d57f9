// The memory-budget flags shared by run, chat, bench, perplexity and serve (docs/STREAMING.md):
// --mem-budget SIZE, --expert-profile FILE, --no-prefetch, --no-direct-io.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/status.h"
#include "engine/engine.h"

namespace frugal::cli {

struct BudgetFlags {
  std::string mem_budget;  // empty: derived from the memory available
  std::string expert_profile;
  bool no_prefetch = false;
  bool no_direct_io = false;
};

void add_budget_flags(CLI::App* sub, BudgetFlags* f);
// Sets the engine's budget options; a malformed size is an error naming --mem-budget.
Status apply_budget_flags(const BudgetFlags& f, engine::EngineOptions& o);

}  // namespace frugal::cli
