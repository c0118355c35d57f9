// frugal run -m DIR -p TEXT [-n N] [sampling flags] [--seed S] [--cache FMT] [-t THREADS]:
// base-model completion. The prompt is the raw text (no chat template; use `frugal chat` for a
// conversation), tokenized with the model's tokenizer after the BOS token when the config names
// one. Tokens are printed as they are made (stdout flushed per token); the last line, on stderr,
// is the summary: prompt and generated tokens, prefill and decode tokens/s, kv cache and peak
// memory.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/gen_options.h"

namespace frugal::cli {
namespace {

struct RunOptions {
  GenFlags gen;
  std::string prompt;
  std::string prompt_file;
  bool no_bos = false;
};

Status run_run(const RunOptions& o) {
  std::string prompt = o.prompt;
  if (!o.prompt_file.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(prompt, read_input(o.prompt_file, "prompt file"));
  }
  FRUGAL_ASSIGN_OR_RETURN(engine::EngineOptions eo, engine_options(o.gen));
  FRUGAL_ASSIGN_OR_RETURN(const engine::GenerateOptions go, generate_options(o.gen));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> eng, engine::Engine::load(eo));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Generator> gen,
                          engine::Generator::create(*eng, go));
  std::vector<int32_t> ids;
  if (!o.no_bos && eng->config().bos_token_id) {
    ids.push_back(static_cast<int32_t>(*eng->config().bos_token_id));
  }
  FRUGAL_RETURN_IF_ERROR(eng->tokenizer().encode_append(prompt, {}, &ids));
  FRUGAL_RETURN_IF_ERROR(write_output(prompt));
  FRUGAL_ASSIGN_OR_RETURN(engine::GenerationStats st, gen->generate(ids, [](std::string_view text) {
    return write_output(text);
  }));
  FRUGAL_RETURN_IF_ERROR(write_output("\n"));
  std::fprintf(stderr, "%s\n", st.summary().c_str());
  return ok_status();
}

}  // namespace

Command add_run(CLI::App& root) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = root.add_subcommand(
      "run", "Complete a raw text prompt (base-model completion, no chat template), streaming");
  add_gen_flags(sub, &o->gen, 128);
  CLI::Option_group* input = sub->add_option_group("prompt", "The prompt (exactly one)");
  input->add_option("-p,--prompt", o->prompt, "Prompt text");
  input->add_option("-f,--file", o->prompt_file, "Read the prompt from a file ('-' = stdin)");
  input->require_option(1);
  sub->add_flag("--no-bos", o->no_bos, "Do not put the BOS token before the prompt");
  return {sub, [o] { return run_run(*o); }};
}

}  // namespace frugal::cli
