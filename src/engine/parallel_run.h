// The engine's side of a parallel run (docs/PARALLEL.md): which shard this process loads, from
// the flags and the processes mpirun started, and the line each process prints once loaded.
#pragma once

#include <optional>
#include <string>

#include "core/status.h"
#include "model/v4/config.h"
#include "model/v4/shard.h"
#include "model/v4/weights.h"

namespace frugal::engine {

struct EngineOptions;

// nullopt for a single process without parallel flags; else this process's shard. Errors (named
// after the flags): several processes without --parallel-experts / --pipeline-stages, stages
// that do not divide the processes or outnumber the blocks, a stage of several processes
// without --parallel-experts, a build without MPI.
Result<std::optional<v4::Shard>> plan_parallel(const EngineOptions& options,
                                               const v4::DeepSeekV4Config& config);

// "rank 1 of 2: experts 128-255 of 256: 5.21 GiB of weights (copied 5.21 GiB, mapped 0 B),
// resident 5.30 GiB".
std::string describe_share(const v4::Shard& shard, const v4::ModelWeights& weights);

}  // namespace frugal::engine
