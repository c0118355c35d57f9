// frugal mem -m DIR --ctx N [--chunk C] [--json] [--config-only]: the memory plan of the model for
// a context of N tokens (engine/memory_plan.h): weights by dtype and kind, kv cache per token and
// in total for each cache format, fixed per-sequence state, activation arena (the model is loaded,
// which maps the weights without reading them, to size its arena for N positions), and the same
// context under a V3.2-style MLA cache and plain MHA.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "engine/engine.h"
#include "engine/memory_plan.h"
#include "model/v4/config.h"

namespace frugal::cli {
namespace {

struct MemOptions {
  std::string model;
  int64_t ctx = 4096;
  int64_t chunk = engine::EngineOptions{}.max_chunk;  // as run / chat
  bool json = false;
  bool config_only = false;
  bool weights_in_ram = false;
};

Status run_mem(const MemOptions& o) {
  FRUGAL_ASSIGN_OR_RETURN(v4::DeepSeekV4Config config, v4::load_config(o.model));
  engine::MemoryPlan plan = engine::plan_memory(config, o.ctx);
  if (!o.config_only) {
    engine::EngineOptions eo;
    eo.model_dir = o.model;
    eo.threads = 1;
    eo.max_seq_len = o.ctx;
    eo.max_chunk = o.chunk;
    eo.scan_values = false;
    eo.load_tokenizer = false;
    eo.weights_in_ram = o.weights_in_ram;
    FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> eng, engine::Engine::load(eo));
    plan.activation_bytes = eng->model().scratch_bytes();
    plan.load_copy_bytes = eng->model().weights().owned_stats.bytes();
    plan.placed_weight_bytes = eng->model().weights().placed_stats.bytes();
  }
  return write_output(o.json ? engine::memory_plan_json(plan) + "\n"
                             : engine::memory_plan_text(plan));
}

}  // namespace

Command add_mem(CLI::App& root) {
  auto o = std::make_shared<MemOptions>();
  o->model = default_model_dir();
  CLI::App* sub = root.add_subcommand(
      "mem", "Memory plan: weights, kv cache per format, fixed state, activations; vs MLA and MHA");
  add_model_option(sub, &o->model);
  sub->add_option("--ctx", o->ctx, "Context length in tokens")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_option("--chunk", o->chunk,
                  "Prefill tokens per forward chunk, as in run / chat (sizes the activation arena)")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_flag("--json", o->json, "One JSON object");
  sub->add_flag("--config-only", o->config_only,
                "Plan from config.json alone (no checkpoint; activation arena not reported)");
  sub->add_flag("--weights-in-ram", o->weights_in_ram,
                "Load as frugal run --weights-in-ram does, so the copied bytes are counted");
  return {sub, [o] { return run_mem(*o); }};
}

}  // namespace frugal::cli
