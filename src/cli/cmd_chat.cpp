// frugal chat -m DIR [--thinking] [--system TEXT] [sampling flags]: a conversation with history,
// rendered with the V4 chat encoding (chat/encoding.h; chat mode by default, thinking mode with
// --thinking or "/think on"). One user turn per line of standard input; commands: /reset (new
// conversation), /think on|off, /exit. On a terminal a "> " prompt is shown; over a pipe each
// reply is printed on its own line, so sessions can be scripted.
//
// KV reuse: each turn renders the whole conversation; when its token ids extend the ids already
// in the cache (the previous prompt and reply), only the new tokens are prefilled (engine
// Generator prefix reuse), otherwise the conversation is prefilled again. The rendered prompt is
// tokenized with special tokens recognised, so a user line that spells a control token (e.g.
// "<｜User｜>") is read as that token.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "chat/encoding.h"
#include "chat/parse.h"
#include "cli/command.h"
#include "cli/gen_options.h"
#include "parallel/world.h"

namespace frugal::cli {
namespace {

struct ChatOptions {
  GenFlags gen;
  bool thinking = false;
  std::string system;
  bool verbose = false;
};

// The assistant message stored in the history for a reply (reasoning split off when thinking).
chat::Message make_message(const std::string& role, const std::string& content) {
  chat::Message m;
  m.role = role;
  m.content = content;
  return m;
}

chat::Message assistant_message(const std::string& reply, chat::ThinkingMode mode) {
  chat::Message m;
  m.role = "assistant";
  Result<chat::ParsedMessage> parsed = chat::parse_completion(reply, mode);
  if (parsed.ok() && parsed->tool_calls.empty()) {
    m.content = parsed->content;
    if (mode == chat::ThinkingMode::kThinking) m.reasoning_content = parsed->reasoning_content;
  } else {
    m.content = reply;  // not a well-formed turn (e.g. a cut-off reply): keep the raw text
  }
  return m;
}

Status run_chat(const ChatOptions& o) {
  FRUGAL_ASSIGN_OR_RETURN(engine::EngineOptions eo, engine_options(o.gen));
  FRUGAL_ASSIGN_OR_RETURN(const engine::GenerateOptions go, generate_options(o.gen));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> eng, engine::Engine::load(eo));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Generator> gen,
                          engine::Generator::create(*eng, go));
  const bool tty = isatty(STDIN_FILENO) != 0;
  chat::ThinkingMode mode = o.thinking ? chat::ThinkingMode::kThinking : chat::ThinkingMode::kChat;
  std::vector<chat::Message> history;
  auto reset = [&] {
    history.clear();
    if (!o.system.empty()) history.push_back(make_message("system", o.system));
    gen->reset();
  };
  reset();
  std::string line;
  while (true) {
    if (tty) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    // Under mpirun only rank 0 has the input: it hands each line to every process.
    bool more = parallel::world_rank() == 0 && static_cast<bool>(std::getline(std::cin, line));
    FRUGAL_RETURN_IF_ERROR(parallel::share_input(&line, &more));
    if (!more) break;
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      reset();
      std::fputs("[new conversation]\n", stderr);
      continue;
    }
    if (line == "/think on" || line == "/think off") {
      mode = line == "/think on" ? chat::ThinkingMode::kThinking : chat::ThinkingMode::kChat;
      std::fprintf(stderr, "[thinking %s]\n", line == "/think on" ? "on" : "off");
      continue;
    }
    if (line[0] == '/') {
      std::fprintf(stderr, "[unknown command '%s': /reset, /think on|off, /exit]\n", line.c_str());
      continue;
    }
    history.push_back(make_message("user", line));
    FRUGAL_ASSIGN_OR_RETURN(std::string prompt,
                            chat::render_messages(history, {.thinking_mode = mode}));
    FRUGAL_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                            eng->tokenizer().encode(prompt, {.allow_special = true}));
    std::string reply;
    FRUGAL_ASSIGN_OR_RETURN(engine::GenerationStats st,
                            gen->generate(ids, [&](std::string_view text) {
                              reply += text;
                              return write_output(text);
                            }));
    FRUGAL_RETURN_IF_ERROR(write_output("\n"));
    if (o.verbose || tty) std::fprintf(stderr, "[%s]\n", st.summary().c_str());
    history.push_back(assistant_message(reply, mode));
  }
  return ok_status();
}

}  // namespace

Command add_chat(CLI::App& root) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* sub = root.add_subcommand(
      "chat", "Chat with history (one turn per stdin line; /reset, /think on|off, /exit)");
  add_gen_flags(sub, &o->gen, 256);
  sub->add_flag("--thinking", o->thinking, "Start in thinking mode (<think> ... </think>)");
  sub->add_option("--system", o->system, "System prompt");
  sub->add_flag("-v,--verbose", o->verbose, "Print each turn's summary line on stderr");
  return {sub, [o] { return run_chat(*o); }};
}

}  // namespace frugal::cli
