// frugal tokenize -m DIR (-f FILE | -p TEXT) [--special]: prints the token ids, space-separated,
// on one line.
#include <memory>

#include "cli/command.h"

namespace frugal::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string file;
  std::string prompt;
  bool special = false;
};

Status run_tokenize(const TokenizeOptions& o, bool from_file) {
  FRUGAL_ASSIGN_OR_RETURN(tokenizer::Tokenizer tok, load_tokenizer(o.model));
  std::string text = o.prompt;
  if (from_file) {
    FRUGAL_ASSIGN_OR_RETURN(text, read_input(o.file, "input file"));
  }
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.encode(text, {.allow_special = o.special}));
  std::string out;
  out.reserve(ids.size() * 6 + 1);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ' ';
    out += std::to_string(ids[i]);
  }
  out += '\n';
  return write_output(out);
}

}  // namespace

Command add_tokenize(CLI::App& root) {
  auto o = std::make_shared<TokenizeOptions>();
  o->model = default_model_dir();
  CLI::App* sub = root.add_subcommand("tokenize", "Print the token ids of a text");
  add_model_option(sub, &o->model);
  CLI::Option_group* input = sub->add_option_group("input", "What to tokenize (exactly one)");
  CLI::Option* file = input->add_option("-f,--file", o->file, "Text file (bytes; '-' = stdin)");
  input->add_option("-p,--prompt", o->prompt, "Text given on the command line");
  input->require_option(1);
  sub->add_flag("--special", o->special,
                "Recognise special tokens written in the text (<｜User｜>, <think>, ...)");
  return {sub, [o, file] { return run_tokenize(*o, file->count() > 0); }};
}

}  // namespace frugal::cli
