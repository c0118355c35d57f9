// Shared pieces of the `frugal` command line: how subcommands register, the model-directory
// default, file reading, and the one-line error format.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace frugal::cli {

// A registered subcommand: its CLI11 app and what to run once parsing succeeded.
struct Command {
  CLI::App* app = nullptr;
  std::function<Status()> run;
};

Command add_tokenize(CLI::App& root);
Command add_detokenize(CLI::App& root);
Command add_render(CLI::App& root);
Command add_parse(CLI::App& root);
Command add_perplexity(CLI::App& root);  // cmd_perplexity.cpp (DeepSeek-V4 forward pass)
// Generation, memory, speed and synthetic checkpoints (cmd_run/chat/mem/bench/synth.cpp).
Command add_run(CLI::App& root);
Command add_chat(CLI::App& root);
Command add_mem(CLI::App& root);
Command add_bench(CLI::App& root);
Command add_synth(CLI::App& root);
Command add_serve(CLI::App& root);  // cmd_serve.cpp (serve/)
Command add_profile(CLI::App& root);  // cmd_profile.cpp (expert profiles for --mem-budget)

// The model directory used when -m is not given: ./models/tiny-v4 if it exists, otherwise the
// shipped model of the source tree this binary was built from (FRUGAL_DEFAULT_MODEL_DIR).
std::string default_model_dir();
// Adds "-m,--model DIR" with the default described in its help text.
CLI::Option* add_model_option(CLI::App* app, std::string* dir);

// Checks for numeric options that name the rule ("--ctx: must be at least 1, got 0"); CLI11's
// PositiveNumber / NonNegativeNumber print the whole double range instead.
CLI::Validator at_least(double min);

Result<tokenizer::Tokenizer> load_tokenizer(const std::string& model_dir);
// Reads a whole file as bytes; "-" reads standard input.
Result<std::string> read_input(const std::string& path, const std::string& what);
// Writes bytes to standard output exactly; fails when the write fails (e.g. a closed pipe).
Status write_output(std::string_view bytes);

}  // namespace frugal::cli
