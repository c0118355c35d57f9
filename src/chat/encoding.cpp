// Rendering of chat::Message lists (encoding.h). Each function names the official function it
// mirrors; behaviour that looks odd (which keys survive a merge, when <think> is emitted) is the
// official behaviour, kept on purpose so prompts match the ones the model was trained on.
#include "chat/encoding.h"

#include <algorithm>

namespace frugal::chat {
namespace {

const std::string kReasoningEffortMax =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"
    "You MUST be very thorough in your thinking and comprehensively decompose the problem to "
    "resolve the root cause, rigorously stress-testing your logic against all potential paths, "
    "edge cases, and adversarial scenarios.\n"
    "Explicitly write out your entire deliberation process, documenting every intermediate step, "
    "considered alternative, and rejected hypothesis to ensure absolutely no assumption is left "
    "unchecked.\n\n";

const std::string kTaskTokens[][2] = {
    {"action", "<｜action｜>"}, {"query", "<｜query｜>"}, {"authority", "<｜authority｜>"},
    {"domain", "<｜domain｜>"}, {"title", "<｜title｜>"}, {"read_url", "<｜read_url｜>"},
};

std::string s(std::string_view v) { return std::string(v); }

// mirrors render_tools (TOOLS_TEMPLATE, with the DSML and thinking tokens filled in)
constexpr std::string_view kToolsHead = R"(## Tools

You have access to a set of tools to help answer the user's question. You can invoke tools by writing a "<｜DSML｜tool_calls>" block like the following:

<｜DSML｜tool_calls>
<｜DSML｜invoke name="$TOOL_NAME">
<｜DSML｜parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</｜DSML｜parameter>
...
</｜DSML｜invoke>
<｜DSML｜invoke name="$TOOL_NAME2">
...
</｜DSML｜invoke>
</｜DSML｜tool_calls>

String parameters should be specified as is and set `string="true"`. For all other types (numbers, booleans, arrays, objects), pass the value in JSON format and set `string="false"`.

If thinking_mode is enabled (triggered by <think>), you MUST output your complete reasoning inside <think>...</think> BEFORE any tool calls or final response.

Otherwise, output directly after </think> with tool calls or final response.

### Available Tool Schemas

)";
constexpr std::string_view kToolsTail = R"(

You MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.
)";

std::string render_tools(const Json& tools) {
  std::string out(kToolsHead);
  for (size_t i = 0; i < tools.size(); ++i) {
    if (i > 0) out += "\n";
    out += py_json_dumps(tools[i]["function"]);
  }
  out += kToolsTail;
  return out;
}

std::string render_response_format(const Json& rf) {
  return "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n" +
         py_json_dumps(rf);
}

// mirrors encode_arguments_to_dsml: arguments that are not a JSON-object string become a single
// parameter named "arguments".
Result<std::string> encode_arguments_to_dsml(const ToolCall& tc, const std::string& where) {
  Json args;
  bool parsed = false;
  if (tc.arguments.is_string()) {
    args = Json::parse(tc.arguments.get<std::string>(), nullptr, false);
    parsed = !args.is_discarded();
  }
  if (!parsed) args = Json{{"arguments", tc.arguments}};
  if (!args.is_object()) {
    return invalid_argument(where + ".function.arguments: expected a JSON object, got " +
                            std::string(args.type_name()));
  }
  std::string out;
  bool first = true;
  for (auto it = args.begin(); it != args.end(); ++it) {
    if (!first) out += "\n";
    first = false;
    const bool is_str = it.value().is_string();
    out += "<" + s(kDsml) + "parameter name=\"" + it.key() + "\" string=\"" +
           (is_str ? "true" : "false") + "\">" +
           (is_str ? it.value().get<std::string>() : py_json_dumps(it.value())) + "</" + s(kDsml) +
           "parameter>";
  }
  return out;
}

bool is_user_like(const Message& m) { return m.role == "user" || m.role == "developer"; }

// mirrors find_last_user_index
int last_user_index(const std::vector<Message>& ms) {
  for (int i = int(ms.size()) - 1; i >= 0; --i) {
    if (is_user_like(ms[i])) return i;
  }
  return -1;
}

// mirrors merge_tool_messages: tool turns become tool_result blocks of a user turn; consecutive
// user turns (without a task) merge into one.
std::vector<Message> merge_tool_messages(std::vector<Message> in) {
  std::vector<Message> merged;
  for (Message& m : in) {
    if (m.role == "tool") {
      ContentBlock b{ContentBlock::Type::kToolResult, m.content.value_or(""), m.tool_call_id};
      if (!merged.empty() && merged.back().role == "user" && merged.back().has_blocks) {
        merged.back().blocks.push_back(std::move(b));
      } else {
        Message u;
        u.role = "user";
        u.has_blocks = true;
        u.blocks.push_back(std::move(b));
        merged.push_back(std::move(u));
      }
    } else if (m.role == "user") {
      ContentBlock b{ContentBlock::Type::kText, m.content.value_or(""), ""};
      if (!merged.empty() && merged.back().role == "user" && merged.back().has_blocks &&
          !merged.back().task) {
        merged.back().blocks.push_back(std::move(b));
      } else {
        Message u;  // only content, task and wo_eos survive (official: task, wo_eos, mask)
        u.role = "user";
        u.content = m.content;
        u.task = m.task;
        u.wo_eos = m.wo_eos;
        u.has_blocks = true;
        u.blocks.push_back(std::move(b));
        merged.push_back(std::move(u));
      }
    } else {
      merged.push_back(std::move(m));
    }
  }
  return merged;
}

// mirrors sort_tool_results_by_call_order (a stable sort; unknown ids count as position 0)
void sort_tool_results_by_call_order(std::vector<Message>* ms) {
  std::vector<std::string> order;  // ids of the last assistant turn with tool calls
  for (Message& m : *ms) {
    if (m.role == "assistant" && !m.tool_calls.empty()) {
      order.clear();
      for (const ToolCall& tc : m.tool_calls) order.push_back(tc.id);
    } else if (m.role == "user" && !m.blocks.empty()) {
      auto pos = [&](const ContentBlock& b) -> size_t {  // a repeated id maps to its last call
        for (size_t i = order.size(); i-- > 0;) {
          if (!order[i].empty() && order[i] == b.tool_use_id) return i;
        }
        return 0;
      };
      std::vector<ContentBlock> results;
      for (const ContentBlock& b : m.blocks) {
        if (b.type == ContentBlock::Type::kToolResult) results.push_back(b);
      }
      bool any_id = std::any_of(order.begin(), order.end(), [](auto& x) { return !x.empty(); });
      if (results.size() < 2 || !any_id) continue;
      std::stable_sort(
          results.begin(), results.end(),
          [&](const ContentBlock& a, const ContentBlock& b) { return pos(a) < pos(b); });
      size_t k = 0;
      for (ContentBlock& b : m.blocks) {
        if (b.type == ContentBlock::Type::kToolResult) b = results[k++];
      }
    }
  }
}

// mirrors _drop_thinking_messages: reasoning of assistant turns before the last user turn goes;
// developer turns before it are dropped.
std::vector<Message> drop_thinking_messages(std::vector<Message> ms) {
  const int last_user = last_user_index(ms);
  std::vector<Message> out;
  for (int i = 0; i < int(ms.size()); ++i) {
    Message& m = ms[i];
    if (m.role == "user" || m.role == "system" || m.role == "tool" || m.role == "latest_reminder" ||
        i >= last_user) {
      out.push_back(std::move(m));
    } else if (m.role == "assistant") {
      m.reasoning_content.reset();
      out.push_back(std::move(m));
    }
  }
  return out;
}

std::string user_text(const Message& m) {
  if (!m.has_blocks || m.blocks.empty()) return m.content.value_or("");
  std::string out;
  for (size_t i = 0; i < m.blocks.size(); ++i) {
    if (i > 0) out += "\n\n";
    const ContentBlock& b = m.blocks[i];
    out +=
        b.type == ContentBlock::Type::kText ? b.text : "<tool_result>" + b.text + "</tool_result>";
  }
  return out;
}

Result<std::string> render_assistant(const std::vector<Message>& ms, int index, bool thinking,
                                     bool drop_thinking, int last_user) {
  const Message& m = ms[index];
  const std::string where = "messages[" + std::to_string(index) + "]";
  std::string tc_content;
  if (!m.tool_calls.empty()) {
    std::string calls;
    for (size_t i = 0; i < m.tool_calls.size(); ++i) {
      FRUGAL_ASSIGN_OR_RETURN(
          std::string args, encode_arguments_to_dsml(
                                m.tool_calls[i], where + ".tool_calls[" + std::to_string(i) + "]"));
      if (i > 0) calls += "\n";
      calls += "<" + s(kDsml) + "invoke name=\"" + m.tool_calls[i].name + "\">\n" + args + "\n</" +
               s(kDsml) + "invoke>";
    }
    tc_content = "\n\n<" + s(kDsml) + "tool_calls>\n" + calls + "\n</" + s(kDsml) + "tool_calls>";
  }
  std::string thinking_part;
  const bool prev_has_task = index > 0 && ms[index - 1].task.has_value();
  if (thinking && !prev_has_task && (!drop_thinking || index > last_user)) {
    thinking_part = m.reasoning_content.value_or("") + s(kThinkEnd);
  }
  return thinking_part + m.content.value_or("") + tc_content + (m.wo_eos ? "" : s(kEos));
}

// mirrors render_message
Result<std::string> render_message(const std::vector<Message>& ms, int index,
                                   const RenderOptions& opt, bool drop_thinking) {
  const Message& m = ms[index];
  const bool thinking = opt.thinking_mode == ThinkingMode::kThinking;
  const int last_user = last_user_index(ms);
  std::string out;
  if (index == 0 && thinking && opt.reasoning_effort == ReasoningEffort::kMax) {
    out += kReasoningEffortMax;
  }
  const bool tools = py_truthy(m.tools);
  const bool rf = py_truthy(m.response_format);
  if (m.role == "system" || m.role == "developer") {
    if (m.role == "developer") out += kUser;
    out += m.content.value_or("");
    if (tools) out += "\n\n" + render_tools(m.tools);
    if (rf) out += "\n\n" + render_response_format(m.response_format);
  } else if (m.role == "user") {
    out += s(kUser) + user_text(m);
  } else if (m.role == "latest_reminder") {
    out += s(kLatestReminder) + m.content.value_or("");
  } else if (m.role == "assistant") {
    FRUGAL_ASSIGN_OR_RETURN(std::string a,
                            render_assistant(ms, index, thinking, drop_thinking, last_user));
    out += a;
  } else {
    return internal_error("render_message: unexpected role '" + m.role + "' after merging");
  }

  // What follows the turn: nothing when a non-assistant turn comes next, else the task token or
  // the assistant prefix that starts generation.
  if (index + 1 < int(ms.size()) && ms[index + 1].role != "assistant" &&
      ms[index + 1].role != "latest_reminder") {
    return out;
  }
  if (m.task) {
    const std::string* token = nullptr;
    for (const auto& t : kTaskTokens) {
      if (t[0] == *m.task) token = &t[1];
    }
    if (token == nullptr) {
      return invalid_argument("messages[" + std::to_string(index) + "].task: unknown task '" +
                              *m.task +
                              "' (expected action, query, authority, domain, title "
                              "or read_url)");
    }
    if (*m.task != "action") {
      out += *token;
    } else {
      out += s(kAssistant) + s(thinking ? kThinkStart : kThinkEnd) + *token;
    }
  } else if (is_user_like(m)) {
    out += kAssistant;
    const bool open = thinking && (!drop_thinking || index >= last_user);
    out += open ? kThinkStart : kThinkEnd;
  }
  return out;
}

}  // namespace

// mirrors encode_messages (without `context`: the whole conversation is rendered)
Result<std::string> render_messages(std::vector<Message> messages, const RenderOptions& options) {
  std::vector<Message> ms = merge_tool_messages(std::move(messages));
  sort_tool_results_by_call_order(&ms);
  bool drop = options.drop_thinking;
  for (const Message& m : ms) drop = drop && !py_truthy(m.tools);
  if (options.thinking_mode == ThinkingMode::kThinking && drop) {
    ms = drop_thinking_messages(std::move(ms));
  }
  std::string out = options.add_bos ? s(kBos) : "";
  for (int i = 0; i < int(ms.size()); ++i) {
    FRUGAL_ASSIGN_OR_RETURN(std::string part, render_message(ms, i, options, drop));
    out += part;
  }
  return out;
}

Result<std::string> render_json(const Json& doc, const RenderOptions& options) {
  FRUGAL_ASSIGN_OR_RETURN(std::vector<Message> ms, messages_from_json(doc));
  return render_messages(std::move(ms), options);
}

}  // namespace frugal::chat
