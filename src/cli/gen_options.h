// Options shared by `frugal run` and `frugal chat`: model, threads, cache format, context and the
// sampling flags, registered on a subcommand and turned into engine options.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/engine_flags.h"
#include "core/status.h"
#include "engine/engine.h"
#include "engine/generator.h"

namespace frugal::cli {

struct GenFlags {
  std::string model;
  int threads = 0;
  bool weights_in_ram = false;
  int64_t chunk = 64;  // prefill tokens per forward chunk
  std::string cache = "fp8";
  int64_t ctx = 4096;
  int64_t max_tokens = 128;
  float temp = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.0f;
  float repeat_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  std::string spec = "auto";  // speculative decoding: off, auto or a draft count
  EngineFlags engine;
};

void add_gen_flags(CLI::App* sub, GenFlags* f, int64_t default_max_tokens);
Result<engine::EngineOptions> engine_options(const GenFlags& f);
Result<engine::GenerateOptions> generate_options(const GenFlags& f);
// --spec off|auto|K: speculative decoding with the MTP block (engine/speculative.h).
Result<engine::SpecOptions> parse_spec(const std::string& value);

}  // namespace frugal::cli
