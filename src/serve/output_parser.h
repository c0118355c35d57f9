// Splits a reply into reasoning, answer and tool calls while it is being generated, so that the
// server can stream each piece as soon as it is certain (docs/deepseek-v4.md §4.3 for the format):
//
//   thinking mode:  reasoning</think>answer[\n\n<｜DSML｜tool_calls>...</｜DSML｜tool_calls>]
//   chat mode:      answer[\n\n<｜DSML｜tool_calls>...</｜DSML｜tool_calls>]
//
// Text is emitted as soon as it cannot be the start of "</think>" (while reasoning) or of the
// tool-call opener "\n\n<｜DSML｜tool_calls" (in the answer, when tools are on), and never in the
// middle of a UTF-8 character; nothing emitted is ever taken back. The tool-call block is held
// until the end and parsed with chat::parse_completion, so arguments follow the official rules
// exactly. The concatenated deltas always equal message().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/encoding.h"
#include "chat/parse.h"

namespace frugal::serve {

struct OutputDelta {
  enum class Kind { kReasoning, kContent, kToolCall };
  Kind kind = Kind::kContent;
  std::string text;  // kReasoning, kContent
  // kToolCall: one whole call.
  int32_t tool_index = 0;  // its position among the reply's tool calls
  std::string tool_id;     // "call_" + 24 letters and digits
  std::string tool_name;
  std::string arguments;  // JSON text
};

// prefix + 24 letters and digits drawn from *state (splitmix64): "chatcmpl-", "call_", ...
std::string make_id(std::string_view prefix, uint64_t* state);

class OutputParser {
 public:
  // mode: the prompt's thinking mode (thinking: text up to "</think>" is reasoning). tools:
  // whether tool calls are parsed (off: everything after the reasoning is content). prefill: text
  // the server put after the prompt's assistant opening that the model continues, e.g.
  // "\n\n<｜DSML｜tool_calls>\n" to force a tool call; it counts as generated but is never
  // emitted. A block that starts right at the beginning of the answer without the "\n\n" is
  // recognised too. id_seed: the seed of the tool-call ids (deterministic for tests).
  OutputParser(chat::ThinkingMode mode, bool tools, std::string prefill = "", uint64_t id_seed = 0);

  // Deltas that are safe to emit now (at most one per kind; none may be empty text).
  std::vector<OutputDelta> push(std::string_view text);
  // End of generation. eos: the turn ended with the EOS token (otherwise a token limit or a stop
  // string cut it). Returns the held-back text and the tool calls (one kToolCall delta each, in
  // order). A tool-call block that chat::parse_completion rejects (malformed, or cut off) is
  // emitted as content instead, so nothing is lost.
  std::vector<OutputDelta> finish(bool eos);

  // The reply so far; the whole reply after finish().
  const chat::ParsedMessage& message() const { return message_; }
  const std::vector<std::string>& tool_call_ids() const { return tool_ids_; }
  bool has_tool_calls() const { return !message_.tool_calls.empty(); }
  bool finished() const { return phase_ == Phase::kDone; }

 private:
  enum class Phase { kReasoning, kContent, kToolCalls, kDone };
  void advance(bool final, std::vector<OutputDelta>* out);
  bool advance_content(bool final, std::vector<OutputDelta>* out);  // true: phase changed
  void resolve_tool_calls(bool eos, std::vector<OutputDelta>* out);
  // Emits text_[from, to) (less any part inside the prefill) as `kind`.
  void emit(OutputDelta::Kind kind, size_t from, size_t to, std::vector<OutputDelta>* out);

  const bool tools_;
  const size_t prefill_len_;  // text_[0, prefill_len_) is the prefill
  uint64_t id_state_;
  Phase phase_;
  std::string text_;         // prefill + everything pushed
  size_t pos_ = 0;           // text_[0, pos_) is decided (emitted, prefill or tool block)
  size_t answer_start_ = 0;  // where the answer begins (just past "</think>")
  size_t block_start_ = 0;   // kToolCalls: where the opener begins
  size_t block_body_ = 0;    // kToolCalls: just past "<｜DSML｜tool_calls"
  chat::ParsedMessage message_;
  std::vector<std::string> tool_ids_;
};

}  // namespace frugal::serve
