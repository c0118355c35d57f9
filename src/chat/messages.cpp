// JSON -> validated chat::Message list (encoding.h).
#include <string>

#include "chat/encoding.h"

namespace frugal::chat {
namespace {

Status field_error(const std::string& where, const std::string& what) {
  return invalid_argument(where + ": " + what);
}

Status optional_string(const Json& obj, const char* key, const std::string& where,
                       std::optional<std::string>* out) {
  if (!obj.contains(key) || obj[key].is_null()) return ok_status();
  if (!obj[key].is_string()) {
    return field_error(where + "." + key,
                       "expected a string or null, got " + std::string(obj[key].type_name()));
  }
  *out = obj[key].get<std::string>();
  return ok_status();
}

// Tool-result content: a string, or a list of content parts of which the text ones are kept
// ("\n\n"-joined) and others become "[Unsupported TYPE]", as the official encoder does.
Status tool_content(const Json& v, const std::string& where, std::string* out) {
  if (v.is_null()) {
    *out = "";
    return ok_status();
  }
  if (v.is_string()) {
    *out = v.get<std::string>();
    return ok_status();
  }
  if (!v.is_array()) return field_error(where, "expected a string or a list of content parts");
  std::string joined;
  for (size_t i = 0; i < v.size(); ++i) {
    const Json& part = v[i];
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      return field_error(where + "[" + std::to_string(i) + "]", "expected {\"type\": ...}");
    }
    if (i > 0) joined += "\n\n";
    const std::string type = part["type"].get<std::string>();
    if (type == "text") {
      std::optional<std::string> text;
      FRUGAL_RETURN_IF_ERROR(
          optional_string(part, "text", where + "[" + std::to_string(i) + "]", &text));
      joined += text.value_or("");
    } else {
      joined += "[Unsupported " + type + "]";
    }
  }
  *out = joined;
  return ok_status();
}

Status tool_calls_from_json(const Json& list, const std::string& where, Message* m) {
  if (list.is_null()) return ok_status();
  if (!list.is_array()) return field_error(where, "expected a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string w = where + "[" + std::to_string(i) + "]";
    const Json& tc = list[i];
    if (!tc.is_object()) return field_error(w, "expected an object");
    if (!tc.contains("function") || !tc["function"].is_object()) {
      return field_error(w + ".function", "expected an object with name and arguments");
    }
    const Json& fn = tc["function"];
    ToolCall call;
    if (!fn.contains("name") || !fn["name"].is_string()) {
      return field_error(w + ".function.name", "expected a string");
    }
    call.name = fn["name"].get<std::string>();
    if (!fn.contains("arguments")) return field_error(w + ".function.arguments", "missing");
    call.arguments = fn["arguments"];
    // Tool results are ordered by tool_calls[i].id, or function.id when that is absent.
    for (const Json* idv :
         {tc.contains("id") ? &tc["id"] : nullptr, fn.contains("id") ? &fn["id"] : nullptr}) {
      if (idv != nullptr && idv->is_string() && !idv->get<std::string>().empty()) {
        call.id = idv->get<std::string>();
        break;
      }
    }
    m->tool_calls.push_back(std::move(call));
  }
  return ok_status();
}

// An OpenAI tool list: [{"type": "function", "function": {...}}, ...] (or null).
Status check_tools(const Json& tools, const std::string& where) {
  if (tools.is_null()) return ok_status();
  if (!tools.is_array()) return field_error(where, "expected a list");
  for (size_t i = 0; i < tools.size(); ++i) {
    if (!tools[i].is_object() || !tools[i].contains("function")) {
      return field_error(where + "[" + std::to_string(i) + "]",
                         "expected {\"type\": \"function\", \"function\": {...}}");
    }
  }
  return ok_status();
}

Result<Message> message_from_json(const Json& j, const std::string& where) {
  if (!j.is_object()) return field_error(where, "expected an object");
  Message m;
  if (!j.contains("role") || !j["role"].is_string()) return field_error(where + ".role", "missing");
  m.role = j["role"].get<std::string>();
  static const char* kRoles[] = {"system", "user",      "assistant",
                                 "tool",   "developer", "latest_reminder"};
  bool known = false;
  for (const char* r : kRoles) known = known || m.role == r;
  if (!known) {
    return field_error(where + ".role", "unknown role '" + m.role +
                                            "' (expected system, user, assistant, tool, "
                                            "developer or latest_reminder)");
  }
  if (m.role == "tool") {
    std::string text;
    FRUGAL_RETURN_IF_ERROR(
        tool_content(j.contains("content") ? j["content"] : Json(), where + ".content", &text));
    m.content = text;
    if (j.contains("tool_call_id") && j["tool_call_id"].is_string()) {
      m.tool_call_id = j["tool_call_id"].get<std::string>();
    }
  } else {
    FRUGAL_RETURN_IF_ERROR(optional_string(j, "content", where, &m.content));
  }
  FRUGAL_RETURN_IF_ERROR(optional_string(j, "reasoning_content", where, &m.reasoning_content));
  FRUGAL_RETURN_IF_ERROR(optional_string(j, "task", where, &m.task));
  if (j.contains("tools")) {
    m.tools = j["tools"];
    FRUGAL_RETURN_IF_ERROR(check_tools(m.tools, where + ".tools"));
  }
  if (j.contains("response_format")) m.response_format = j["response_format"];
  if (j.contains("wo_eos")) m.wo_eos = py_truthy(j["wo_eos"]);
  if (j.contains("tool_calls")) {
    FRUGAL_RETURN_IF_ERROR(tool_calls_from_json(j["tool_calls"], where + ".tool_calls", &m));
  }
  if (m.role == "developer" && !(m.content && !m.content->empty())) {
    return field_error(where + ".content", "a developer message needs non-empty content");
  }
  return m;
}

}  // namespace

Result<std::vector<Message>> messages_from_json(const Json& doc) {
  const Json* list = &doc;
  const Json* tools = nullptr;
  if (doc.is_object()) {
    if (!doc.contains("messages")) return field_error("messages", "missing");
    list = &doc["messages"];
    if (doc.contains("tools") && !doc["tools"].is_null()) tools = &doc["tools"];
  }
  if (!list->is_array()) return field_error("messages", "expected a list of messages");
  std::vector<Message> out;
  for (size_t i = 0; i < list->size(); ++i) {
    FRUGAL_ASSIGN_OR_RETURN(Message m,
                            message_from_json((*list)[i], "messages[" + std::to_string(i) + "]"));
    out.push_back(std::move(m));
  }
  if (tools != nullptr) {
    FRUGAL_RETURN_IF_ERROR(check_tools(*tools, "tools"));
    if (!out.empty() && out[0].role == "system") {
      out[0].tools = *tools;
    } else {
      Message system;
      system.role = "system";
      system.content = "";
      system.tools = *tools;
      out.insert(out.begin(), std::move(system));
    }
  }
  return out;
}

std::optional<ReasoningEffort> parse_reasoning_effort(std::string_view s) {
  if (s == "max") return ReasoningEffort::kMax;
  if (s == "high") return ReasoningEffort::kHigh;
  if (s.empty() || s == "none") return ReasoningEffort::kNone;
  return std::nullopt;
}

}  // namespace frugal::chat
