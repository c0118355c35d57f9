// DeepSeek-V4 chat encoding: OpenAI-style messages -> the prompt text the model sees
// (docs/deepseek-v4.md §4.3). Mirrors the logic of the official `encoding_dsv4.py`
// (encode_messages, render_message, merge_tool_messages, sort_tool_results_by_call_order,
// _drop_thinking_messages), checked byte for byte against its output in tests/chat.
//
//   <｜begin▁of▁sentence｜>{system}<｜User｜>{user}<｜Assistant｜></think>{answer}<｜end▁of▁sentence｜>
//
// Chat mode closes thinking right after <｜Assistant｜>; thinking mode opens it with <think> and
// the model writes reasoning</think>answer. Tool results travel in user turns as
// <tool_result>...</tool_result>; tool calls are written in DSML (<｜DSML｜tool_calls>...).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/py_json.h"
#include "core/status.h"

namespace frugal::chat {

inline constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view kThinkStart = "<think>";
inline constexpr std::string_view kThinkEnd = "</think>";
inline constexpr std::string_view kDsml = "｜DSML｜";
inline constexpr std::string_view kUser = "<｜User｜>";
inline constexpr std::string_view kAssistant = "<｜Assistant｜>";
inline constexpr std::string_view kLatestReminder = "<｜latest_reminder｜>";

enum class ThinkingMode { kChat, kThinking };
enum class ReasoningEffort { kNone, kHigh, kMax };  // only kMax adds a prefix (official logic)

struct ToolCall {
  std::string id;    // tool_calls[i].id (used to order tool results)
  std::string name;  // function.name
  Json arguments;    // function.arguments as given: normally a JSON-encoded string
};

struct ContentBlock {
  enum class Type { kText, kToolResult };
  Type type = Type::kText;
  std::string text;         // text, or the tool result's content
  std::string tool_use_id;  // tool results: the tool_call_id they answer
};

// One message after validation. Field names follow the OpenAI / official encoder keys.
struct Message {
  std::string role;  // system, user, assistant, tool, developer, latest_reminder
  std::optional<std::string> content;
  std::optional<std::string> reasoning_content;
  Json tools;            // OpenAI tool list ([{"type": "function", "function": {...}}]) or null
  Json response_format;  // or null
  std::vector<ToolCall> tool_calls;
  std::string tool_call_id;
  std::optional<std::string> task;  // quick-instruction task: action, query, authority, ...
  bool wo_eos = false;              // assistant turn without the closing EOS
  // Filled by the tool-message merge for user turns: text and tool-result blocks.
  bool has_blocks = false;
  std::vector<ContentBlock> blocks;
};

struct RenderOptions {
  ThinkingMode thinking_mode = ThinkingMode::kChat;
  ReasoningEffort reasoning_effort = ReasoningEffort::kNone;
  // Strip reasoning of assistant turns before the last user turn (thinking mode only). Turned
  // off automatically when any message defines tools.
  bool drop_thinking = true;
  bool add_bos = true;
};

// Accepts {"messages": [...], "tools": [...]} or a bare messages array. Top-level tools go on the
// first message when it is a system message, otherwise on a new empty system message put first
// (the official encoder reads tools from a system or developer message). Errors name the field,
// e.g. "messages[2].tool_calls[0].function.name: expected a string".
Result<std::vector<Message>> messages_from_json(const Json& doc);

Result<std::string> render_messages(std::vector<Message> messages, const RenderOptions& options);
Result<std::string> render_json(const Json& doc, const RenderOptions& options);

// "max" / "high" / "none" (or empty) -> effort.
std::optional<ReasoningEffort> parse_reasoning_effort(std::string_view s);

}  // namespace frugal::chat
