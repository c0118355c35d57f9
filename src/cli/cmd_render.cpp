// frugal render --messages FILE [--thinking] [--reasoning-effort max|high]: prints exactly the
// prompt text the model sees for an OpenAI-style conversation (src/chat/encoding.h).
#include <memory>

#include "chat/encoding.h"
#include "cli/command.h"

namespace frugal::cli {
namespace {

struct RenderCliOptions {
  std::string model;
  std::string messages;
  bool thinking = false;
  std::string effort;
  bool keep_thinking = false;
  bool no_bos = false;
  bool ids = false;
};

Status run_render(const RenderCliOptions& o, bool model_given) {
  FRUGAL_ASSIGN_OR_RETURN(std::string text, read_input(o.messages, "messages file"));
  chat::Json doc = chat::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return invalid_argument("messages file '" + o.messages + "': not valid JSON");
  }
  chat::RenderOptions ro;
  ro.thinking_mode = o.thinking ? chat::ThinkingMode::kThinking : chat::ThinkingMode::kChat;
  ro.reasoning_effort = *chat::parse_reasoning_effort(o.effort);
  ro.drop_thinking = !o.keep_thinking;
  ro.add_bos = !o.no_bos;
  auto prompt = chat::render_json(doc, ro);
  if (!prompt.ok()) return prompt.status().with_context("messages file '" + o.messages + "': ");
  if (!o.ids && !model_given) return write_output(*prompt);
  // With -m the model's tokenizer must know the chat format's special tokens.
  FRUGAL_ASSIGN_OR_RETURN(tokenizer::Tokenizer tok, load_tokenizer(o.model));
  for (std::string_view sp : {chat::kBos, chat::kEos, chat::kUser, chat::kAssistant}) {
    if (!tok.added_token_id(sp)) {
      return invalid_argument("model '" + o.model + "': tokenizer has no special token '" +
                              std::string(sp) + "' used by the V4 chat format");
    }
  }
  if (!o.ids) return write_output(*prompt);
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.encode(*prompt, {.allow_special = true}));
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  return write_output(out + "\n");
}

}  // namespace

Command add_render(CLI::App& root) {
  auto o = std::make_shared<RenderCliOptions>();
  o->model = default_model_dir();
  CLI::App* sub = root.add_subcommand(
      "render", "Print the prompt text the model sees for a conversation (V4 chat format)");
  CLI::Option* model = add_model_option(sub, &o->model);
  sub->add_option("--messages", o->messages,
                  "JSON file: {\"messages\": [...], \"tools\": [...]} or a bare messages list "
                  "('-' = stdin)")
      ->required();
  sub->add_flag("--thinking", o->thinking,
                "Thinking mode (prompt ends with <think>); default chat");
  sub->add_option("--reasoning-effort", o->effort,
                  "max adds the maximum-effort prefix in thinking mode; high adds nothing")
      ->check(CLI::IsMember({"max", "high"}));
  sub->add_flag("--keep-thinking", o->keep_thinking,
                "Keep the reasoning of earlier assistant turns (by default it is dropped unless "
                "tools are defined)");
  sub->add_flag("--no-bos", o->no_bos, "Do not start with <｜begin▁of▁sentence｜>");
  sub->add_flag("--ids", o->ids, "Print the token ids of the prompt instead of its text");
  return {sub, [o, model] { return run_render(*o, model->count() > 0); }};
}

}  // namespace frugal::cli
