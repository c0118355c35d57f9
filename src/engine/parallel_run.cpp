#include "engine/parallel_run.h"

#include "engine/engine.h"
#include "model/v4/tensor_table.h"
#include "parallel/world.h"

namespace frugal::engine {

Result<std::optional<v4::Shard>> plan_parallel(const EngineOptions& o,
                                               const v4::DeepSeekV4Config& config) {
  const int ranks = parallel::world_size();
  const bool asked = o.parallel_experts || o.pipeline_stages > 1;
  if (ranks == 1 && !asked) return std::optional<v4::Shard>();
  if (!parallel::built_with_mpi()) {
    return unsupported(
        "--parallel-experts / --pipeline-stages: this frugal was built without MPI (install "
        "libopenmpi-dev, e.g. scripts/setup.sh, and rebuild)");
  }
  if (ranks > 1 && !asked) {
    return invalid_argument("mpirun started " + std::to_string(ranks) +
                            " processes: say how they share the model with --parallel-experts "
                            "and/or --pipeline-stages N");
  }
  if (o.pipeline_stages < 1) {
    return invalid_argument("--pipeline-stages must be at least 1, got " +
                            std::to_string(o.pipeline_stages));
  }
  if (ranks % o.pipeline_stages != 0) {
    return invalid_argument("--pipeline-stages " + std::to_string(o.pipeline_stages) +
                            ": the run has " + std::to_string(ranks) +
                            (ranks == 1 ? " process (start it with mpirun -np N, N a multiple of "
                                        : " processes (the stages need a multiple of ") +
                            std::to_string(o.pipeline_stages) + ")");
  }
  if (!o.parallel_experts && ranks != o.pipeline_stages) {
    return invalid_argument("--pipeline-stages " + std::to_string(o.pipeline_stages) + " with " +
                            std::to_string(ranks) +
                            " processes puts several in a stage: add --parallel-experts to share "
                            "each stage's routed experts among them");
  }
  FRUGAL_ASSIGN_OR_RETURN(v4::Shard shard,
                          v4::make_shard(config, parallel::world_rank(), ranks, o.pipeline_stages));
  return std::optional<v4::Shard>(shard);
}

std::string describe_share(const v4::Shard& shard, const v4::ModelWeights& w) {
  // The bytes of the tensors this process holds, as the checkpoint stores them.
  const v4::TensorTable table(w.config);
  uint64_t held = 0;
  for (const v4::TensorSpec& spec : table.entries()) {
    if (!v4::holds_tensor(shard, spec)) continue;
    const format::TensorInfo* t = w.checkpoint.find(spec.name);
    held += t != nullptr ? t->size : 0;
  }
  return shard.describe() + ": holds " + format_bytes(held) + " of weights (" +
         format_bytes(w.placed_bytes) + " copied into huge pages, " +
         format_bytes(w.owned_stats.bytes()) + " converted at load), resident now " +
         format_bytes(resident_bytes());
}

}  // namespace frugal::engine
