#include "cli/engine_flags.h"

#include "cli/command.h"
#include "engine/budget.h"

namespace frugal::cli {

void add_engine_flags(CLI::App* sub, EngineFlags* f) {
  sub->add_option("--mem-budget", f->mem_budget,
                  "Memory frugal may hold (e.g. 8G): the routed experts stream from disk through "
                  "a cache of what fits beside the resident weights, kv cache and activations. "
                  "Default: 90% of the memory available (cgroup limit included), used only when "
                  "the model does not fit in it. 'off': never stream (the weights stay mapped "
                  "and the page cache decides, as with no budget before)");
  sub->add_option("--expert-profile", f->expert_profile,
                  "Expert counts from `frugal profile`: the hottest experts are read at start and "
                  "kept in the cache (with --mem-budget)");
  sub->add_flag("--no-prefetch", f->no_prefetch,
                "Do not prefetch the next layer's likely experts (streamed experts)");
  sub->add_flag("--no-direct-io", f->no_direct_io,
                "Read streamed experts through the page cache (dropped after each read) instead "
                "of O_DIRECT");
  sub->add_flag("--act-quant", f->act_quant,
                "The deployed numerics of DeepSeek's inference: round the input of every FP8/FP4 "
                "linear to FP8 e4m3 (1x128 blocks, power-of-two scales) before the matmul, as "
                "its act_quant does. Default: f32 activations");
  sub->add_flag("--parallel-experts", f->parallel_experts,
                "Under mpirun: the processes of a pipeline stage share its routed experts, each "
                "loading only its own; the logits equal one process's bit for bit "
                "(docs/PARALLEL.md)");
  sub->add_option("--pipeline-stages", f->pipeline_stages,
                  "Under mpirun: split the blocks into N stages, each run by processes / N "
                  "processes (with --parallel-experts when that is more than one)")
      ->check(at_least(1));
}

Status apply_engine_flags(const EngineFlags& f, engine::EngineOptions& o) {
  if (f.mem_budget == "off") {
    o.stream_experts = engine::StreamExperts::kNever;
  } else if (!f.mem_budget.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(const uint64_t bytes, engine::parse_size(f.mem_budget, "--mem-budget"));
    o.mem_budget = bytes;
  }
  o.expert_profile = f.expert_profile;
  o.prefetch_experts = !f.no_prefetch;
  o.direct_io = !f.no_direct_io;
  o.act_quant = f.act_quant;
  o.parallel_experts = f.parallel_experts;
  o.pipeline_stages = f.pipeline_stages;
  return ok_status();
}

}  // namespace frugal::cli
