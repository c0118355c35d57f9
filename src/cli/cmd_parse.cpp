// frugal parse [--thinking] < completion.txt: splits a completion into reasoning, answer and tool
// calls and prints them as one JSON object (src/chat/parse.h), formatted like Python's
// json.dumps(..., ensure_ascii=False).
#include <memory>

#include "chat/parse.h"
#include "cli/command.h"

namespace frugal::cli {
namespace {

struct ParseCliOptions {
  std::string file = "-";
  bool thinking = false;
};

Status run_parse(const ParseCliOptions& o) {
  FRUGAL_ASSIGN_OR_RETURN(std::string text, read_input(o.file, "completion"));
  FRUGAL_ASSIGN_OR_RETURN(chat::ParsedMessage m,
                          chat::parse_completion(text, o.thinking ? chat::ThinkingMode::kThinking
                                                                  : chat::ThinkingMode::kChat));
  return write_output(chat::py_json_dumps(chat::parsed_message_to_json(m)) + "\n");
}

}  // namespace

Command add_parse(CLI::App& root) {
  auto o = std::make_shared<ParseCliOptions>();
  CLI::App* sub = root.add_subcommand(
      "parse",
      "Split a completion (text after the prompt, ending with <｜end▁of▁sentence｜>) into "
      "reasoning_content, content and tool_calls; prints JSON");
  sub->add_option("-f,--file", o->file, "Completion file (default '-': standard input)");
  sub->add_flag("--thinking", o->thinking,
                "The prompt ended with <think>: the completion starts with reasoning");
  return {sub, [o] { return run_parse(*o); }};
}

}  // namespace frugal::cli
