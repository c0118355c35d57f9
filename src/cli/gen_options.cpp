#include "cli/gen_options.h"

#include <exception>
#include <string>

#include "cli/command.h"

namespace frugal::cli {

void add_gen_flags(CLI::App* sub, GenFlags* f, int64_t default_max_tokens) {
  f->model = default_model_dir();
  f->max_tokens = default_max_tokens;
  add_model_option(sub, &f->model);
  sub->add_option("-n,--n-predict", f->max_tokens, "Tokens to generate at most")
      ->capture_default_str()
      ->check(at_least(0));
  sub->add_option("--temp", f->temp, "Temperature (0 = greedy)")->capture_default_str();
  sub->add_option("--top-k", f->top_k, "Keep the k most likely tokens (0 = off)")
      ->capture_default_str();
  sub->add_option("--top-p", f->top_p, "Nucleus mass (1 = off)")->capture_default_str();
  sub->add_option("--min-p", f->min_p, "Drop tokens below min-p x the top probability")
      ->capture_default_str();
  sub->add_option("--repeat-penalty", f->repeat_penalty, "Repetition penalty (1 = off)")
      ->capture_default_str();
  sub->add_option("--presence-penalty", f->presence_penalty, "Presence penalty")
      ->capture_default_str();
  sub->add_option("--frequency-penalty", f->frequency_penalty, "Frequency penalty")
      ->capture_default_str();
  sub->add_option("--seed", f->seed, "Random seed (same seed, same output)")->capture_default_str();
  sub->add_option("--stop", f->stop, "Stop string (repeatable); not printed");
  sub->add_flag("--ignore-eos", f->ignore_eos, "Do not stop at the end-of-sequence token");
  sub->add_option("--cache", f->cache, "KV cache format: fp8 (584-B entries), bf16 or f32")
      ->capture_default_str();
  sub->add_option("-c,--ctx", f->ctx, "Context length: prompt plus generated tokens")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_option("-t,--threads", f->threads, "Worker threads (0 = one per CPU)")
      ->check(at_least(0));
  sub->add_option("--chunk", f->chunk,
                  "Prefill tokens per forward chunk: each routed expert is read once per chunk, so "
                  "larger chunks prefill MoE models faster for a larger activation arena")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_option("--spec", f->spec,
                  "Speculative decoding with the model's MTP block: off, auto (1 draft per round, "
                  "kept only if the first generation measures it faster) or K drafts per round "
                  "(1-8); the output follows the same distribution, greedy output is unchanged")
      ->capture_default_str();
  sub->add_flag("--weights-in-ram", f->weights_in_ram,
                "Copy the weights into huge-page memory at load (faster decode; needs RAM for the "
                "whole model)");
  add_engine_flags(sub, &f->engine);
}

Result<engine::EngineOptions> engine_options(const GenFlags& f) {
  engine::EngineOptions o;
  o.model_dir = f.model;
  o.threads = f.threads;
  o.weights_in_ram = f.weights_in_ram;
  o.max_chunk = f.chunk;
  FRUGAL_ASSIGN_OR_RETURN(o.cache, engine::parse_cache_format(f.cache));
  o.max_seq_len = f.ctx;
  FRUGAL_RETURN_IF_ERROR(apply_engine_flags(f.engine, o));
  return o;
}

Result<engine::SpecOptions> parse_spec(const std::string& value) {
  if (value == "off") return engine::SpecOptions{.mode = engine::SpecMode::kOff};
  if (value == "auto") return engine::SpecOptions{.mode = engine::SpecMode::kAuto};
  int32_t k = 0;
  size_t used = 0;
  try {
    k = std::stoi(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || k < 1 || k > 8) {
    return invalid_argument("--spec: expected off, auto or a draft count 1-8, got '" + value + "'");
  }
  return engine::SpecOptions{.mode = engine::SpecMode::kOn, .draft_tokens = k};
}

Result<engine::GenerateOptions> generate_options(const GenFlags& f) {
  engine::GenerateOptions g;
  FRUGAL_ASSIGN_OR_RETURN(g.spec, parse_spec(f.spec));
  g.max_tokens = f.max_tokens;
  g.sampling.temperature = f.temp;
  g.sampling.top_k = f.top_k;
  g.sampling.top_p = f.top_p;
  g.sampling.min_p = f.min_p;
  g.sampling.repetition_penalty = f.repeat_penalty;
  g.sampling.presence_penalty = f.presence_penalty;
  g.sampling.frequency_penalty = f.frequency_penalty;
  g.sampling.seed = f.seed;
  g.stop_strings = f.stop;
  g.stop_at_eos = !f.ignore_eos;
  return g;
}

}  // namespace frugal::cli
