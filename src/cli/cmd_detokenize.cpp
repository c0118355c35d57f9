// frugal detokenize -m DIR (-f FILE | --ids "1 2 3") [--skip-special]: writes the bytes of the
// ids to stdout, exactly (no newline added), so tokenize and detokenize round-trip any file.
#include <cerrno>
#include <cstdlib>
#include <memory>

#include "cli/command.h"

namespace frugal::cli {
namespace {

struct DetokenizeOptions {
  std::string model;
  std::string file;
  std::string ids;
  bool skip_special = false;
};

Result<std::vector<int32_t>> parse_ids(const std::string& text, const std::string& what) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i == text.size()) break;
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    const std::string word = text.substr(i, j - i);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(word.c_str(), &end, 10);
    if (word.find_first_not_of("0123456789") != std::string::npos || errno != 0 || *end != '\0' ||
        v > 0x7FFFFFFF) {
      return invalid_argument(what + ": '" + word.substr(0, 40) + "' (token " +
                              std::to_string(ids.size() + 1) +
                              ") is not a token id (expected a non-negative integer)");
    }
    ids.push_back(int32_t(v));
    i = j;
  }
  return ids;
}

Status run_detokenize(const DetokenizeOptions& o, bool from_file) {
  FRUGAL_ASSIGN_OR_RETURN(tokenizer::Tokenizer tok, load_tokenizer(o.model));
  std::string text = o.ids;
  std::string what = "--ids";
  if (from_file) {
    FRUGAL_ASSIGN_OR_RETURN(text, read_input(o.file, "ids file"));
    what = "ids file '" + o.file + "'";
  }
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int32_t> ids, parse_ids(text, what));
  FRUGAL_ASSIGN_OR_RETURN(std::string bytes, tok.decode(ids, {.skip_special = o.skip_special}));
  return write_output(bytes);
}

}  // namespace

Command add_detokenize(CLI::App& root) {
  auto o = std::make_shared<DetokenizeOptions>();
  o->model = default_model_dir();
  CLI::App* sub = root.add_subcommand("detokenize", "Print the text of token ids (exact bytes)");
  add_model_option(sub, &o->model);
  CLI::Option_group* input = sub->add_option_group("input", "The ids (exactly one)");
  CLI::Option* file =
      input->add_option("-f,--file", o->file, "File of whitespace-separated ids ('-' = stdin)");
  input->add_option("--ids", o->ids, "Whitespace-separated ids, e.g. \"1 2 3\"");
  input->require_option(1);
  sub->add_flag("--skip-special", o->skip_special, "Leave out special tokens (BOS, EOS, ...)");
  return {sub, [o, file] { return run_detokenize(*o, file->count() > 0); }};
}

}  // namespace frugal::cli
