// The engine flags shared by run, chat, bench, perplexity, profile and serve: the memory budget
// (docs/STREAMING.md: --mem-budget SIZE, --expert-profile FILE, --no-prefetch, --no-direct-io) and
// the numerics (--act-quant); a parallel run under mpirun (--parallel-experts,
// --pipeline-stages N; docs/PARALLEL.md).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/status.h"
#include "engine/engine.h"

namespace frugal::cli {

struct EngineFlags {
  std::string mem_budget;  // empty: derived from the memory available
  std::string expert_profile;
  bool no_prefetch = false;
  bool no_direct_io = false;
  bool act_quant = false;
  // A parallel run under mpirun (docs/PARALLEL.md).
  bool parallel_experts = false;
  int pipeline_stages = 1;
};

void add_engine_flags(CLI::App* sub, EngineFlags* f);
// Sets the engine's options; a malformed size is an error naming --mem-budget.
Status apply_engine_flags(const EngineFlags& f, engine::EngineOptions& o);

}  // namespace frugal::cli
