// frugal mem --ranks N [--pipeline-stages S]: what each process of a parallel run holds
// (engine/rank_plan.h, docs/PARALLEL.md), from the config alone.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "model/v4/config.h"

namespace frugal::cli {

struct MemRanksOptions {
  int32_t ranks = 1;
  int32_t stages = 1;
  int64_t ctx = 4096;
  std::string cache = "fp8";
  bool json = false;
};

// Plans and writes the per-rank table (text or one JSON object). make_shard's errors that do not
// already name a flag are given "--ranks N" as context.
Status run_mem_ranks(const MemRanksOptions& o, const v4::DeepSeekV4Config& config);

}  // namespace frugal::cli
