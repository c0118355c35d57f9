// The reverse of the chat encoding: split a completion (the text the model generated after the
// prompt, ending with <｜end▁of▁sentence｜>) into reasoning, answer and tool calls. Mirrors the
// official parse_message_from_completion_text / parse_tool_calls, including what they reject:
// a missing </think> in thinking mode, a missing EOS, malformed DSML, text after the tool calls,
// and special tokens inside the reasoning or the answer. Errors say what was expected and where.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "chat/encoding.h"
#include "core/status.h"

namespace frugal::chat {

struct ParsedToolCall {
  std::string name;
  std::string arguments;  // JSON text, e.g. {"city": "Paris", "days": 3}
};

struct ParsedMessage {
  std::string content;
  std::string reasoning_content;
  std::vector<ParsedToolCall> tool_calls;
};

Result<ParsedMessage> parse_completion(std::string_view text, ThinkingMode mode);

// {"role": "assistant", "content": ..., "reasoning_content": ..., "tool_calls": [{"type":
// "function", "function": {"name": ..., "arguments": ...}}]}: the official result's shape.
Json parsed_message_to_json(const ParsedMessage& m);

}  // namespace frugal::chat
