// frugal bench --spec K (bench_spec.cpp): speculative against plain decoding in one run, the
// cost of verifying n tokens and of an MTP step, and the speedup they imply for an acceptance rate.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/memory_plan.h"

namespace frugal::cli {

struct SpecBench {
  int32_t k = 0;         // drafts per round
  double plain_tps = 0;  // greedy decode tokens/s, median over repetitions
  double spec_tps = 0;   // the same with speculation
  int64_t drafted = 0;   // over all repetitions
  int64_t accepted = 0;
  // Measured: verify[n] = c(n) / c(1), a forward of n = 1 .. k + 1 tokens; mtp = one MTP step
  // (block + head) / c(1). And the same predicted from weight bytes (engine/memory_plan.h).
  engine::SpecCostModel measured;
  engine::SpecCostModel by_bytes;
  double acceptance() const { return drafted > 0 ? double(accepted) / double(drafted) : 0.0; }
};

// Needs an engine whose context holds prompt + gen + k + 1 tokens and whose chunk holds k + 1.
Result<SpecBench> bench_speculation(engine::Engine& eng, std::span<const int32_t> prompt,
                                    int64_t gen, int32_t k, int reps);

// The text report's cost lines: "verify cost vs 1 token (measured, by weight bytes): 2 tokens
// 1.05x / 1.07x, ...; MTP step ...", then the projected speedups at acceptance 0.6 / 0.8 / 0.9.
std::string spec_cost_text(const SpecBench& s);

}  // namespace frugal::cli
