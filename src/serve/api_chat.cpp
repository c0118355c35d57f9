// Chat request bodies -> ChatRequest (api_request.h lists the accepted fields).
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "serve/api_fields.h"
#include "serve/api_request.h"

namespace frugal::serve {

using detail::check_known_fields;
using detail::check_model;
using detail::Error;
using detail::field;
using detail::field_error;
using detail::get_bool;
using detail::get_int;
using detail::Json;
using detail::parse_body;
using detail::parse_gen;
using detail::shown;

namespace {

// OpenAI content parts [{"type": "text", "text": ...}] -> one string per message.
Error join_content_parts(Json* messages) {
  for (size_t i = 0; i < messages->size(); ++i) {
    Json& msg = (*messages)[i];
    if (!msg.is_object() || !msg.contains("content") || !msg["content"].is_array()) continue;
    const std::string where = "messages[" + std::to_string(i) + "].content";
    std::string joined;
    const Json& parts = msg["content"];
    for (size_t j = 0; j < parts.size(); ++j) {
      const std::string w = where + "[" + std::to_string(j) + "]";
      const Json& part = parts[j];
      if (!part.is_object()) {
        return field_error(
            w, "expected a content part {\"type\": \"text\", \"text\": ...}, got " + shown(part));
      }
      const Json* type = field(part, "type");
      if (type == nullptr || !type->is_string()) {
        return field_error(w + ".type",
                           "expected \"text\", got " + (type ? shown(*type) : "nothing"));
      }
      if (*type != "text") {
        return field_error(w + ".type",
                           "only \"text\" content parts are supported, got " + shown(*type));
      }
      const Json* text = field(part, "text");
      if (text == nullptr || !text->is_string()) {
        return field_error(w + ".text",
                           "expected a string, got " + (text ? shown(*text) : "nothing"));
      }
      if (j > 0) joined += "\n\n";
      joined += text->get<std::string>();
    }
    msg["content"] = joined;
  }
  return {};
}

bool valid_tool_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Error parse_tools(const Json& doc, std::vector<std::string>* names) {
  const Json* tools = field(doc, "tools");
  if (tools == nullptr) return {};
  if (!tools->is_array())
    return field_error("tools", "expected an array of tools, got " + shown(*tools));
  for (size_t i = 0; i < tools->size(); ++i) {
    const std::string w = "tools[" + std::to_string(i) + "]";
    const Json& t = (*tools)[i];
    if (!t.is_object()) {
      return field_error(w,
                         "expected {\"type\": \"function\", \"function\": {...}}, got " + shown(t));
    }
    const Json* type = field(t, "type");
    if (type == nullptr || *type != "function") {
      return field_error(w + ".type",
                         "expected \"function\", got " + (type ? shown(*type) : "nothing"));
    }
    const Json* fn = field(t, "function");
    if (fn == nullptr || !fn->is_object()) {
      return field_error(w + ".function", "expected an object with a name");
    }
    const Json* name = field(*fn, "name");
    if (name == nullptr || !name->is_string() || !valid_tool_name(name->get<std::string>())) {
      return field_error(
          w + ".function.name",
          "expected 1 to 64 letters, digits, '_' or '-', got " + (name ? shown(*name) : "nothing"));
    }
    for (const std::string& n : *names) {
      if (n == *name)
        return field_error(w + ".function.name", "duplicate tool name " + shown(*name));
    }
    names->push_back(name->get<std::string>());
    const Json* desc = field(*fn, "description");
    if (desc != nullptr && !desc->is_string()) {
      return field_error(w + ".function.description", "expected a string, got " + shown(*desc));
    }
    const Json* params = field(*fn, "parameters");
    if (params != nullptr && !params->is_object()) {
      return field_error(w + ".function.parameters",
                         "expected a JSON Schema object, got " + shown(*params));
    }
  }
  return {};
}

Error parse_tool_choice(const Json& doc, const std::vector<std::string>& tools, ChatRequest* r) {
  const Json* tc = field(doc, "tool_choice");
  r->tool_choice = tools.empty() ? ToolChoice::kNone : ToolChoice::kAuto;
  if (tc == nullptr) return {};
  if (tools.empty()) return field_error("tool_choice", "only allowed when tools are given");
  if (tc->is_string()) {
    if (*tc == "none")
      r->tool_choice = ToolChoice::kNone;
    else if (*tc == "auto")
      r->tool_choice = ToolChoice::kAuto;
    else if (*tc == "required")
      r->tool_choice = ToolChoice::kRequired;
    else {
      return field_error("tool_choice",
                         "expected \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
                         "\"function\": {\"name\": ...}}, got " +
                             shown(*tc));
    }
    return {};
  }
  if (!tc->is_object()) {
    return field_error("tool_choice", "expected a string or an object, got " + shown(*tc));
  }
  const Json* type = field(*tc, "type");
  if (type == nullptr || *type != "function") {
    return field_error("tool_choice.type",
                       "expected \"function\", got " + (type ? shown(*type) : "nothing"));
  }
  const Json* fn = field(*tc, "function");
  const Json* name = fn != nullptr && fn->is_object() ? field(*fn, "name") : nullptr;
  if (name == nullptr || !name->is_string()) {
    return field_error("tool_choice.function.name", "expected the name of a declared tool");
  }
  for (const std::string& t : tools) {
    if (t == *name) {
      r->tool_choice = ToolChoice::kNamed;
      r->tool_choice_name = t;
      return {};
    }
  }
  return field_error("tool_choice.function.name", "no tool named " + shown(*name) + " in tools");
}

// Thinking switches and reasoning_effort -> RenderOptions (the mapping is in api_request.h).
Error parse_thinking(const Json& doc, chat::RenderOptions* render) {
  std::optional<bool> on;
  std::string on_from;
  auto set = [&](bool value, const std::string& from) -> Error {
    if (on && *on != value) return field_error(from, "conflicts with " + on_from);
    on = value;
    on_from = from;
    return {};
  };
  if (const Json* kw = field(doc, "chat_template_kwargs")) {
    if (!kw->is_object())
      return field_error("chat_template_kwargs", "expected an object, got " + shown(*kw));
    for (auto it = kw->begin(); it != kw->end(); ++it) {
      const std::string path = "chat_template_kwargs." + it.key();
      if (it.key() != "thinking" && it.key() != "enable_thinking") {
        return field_error(path, "unknown field (accepted: thinking, enable_thinking)");
      }
      if (it->is_null()) continue;
      if (!it->is_boolean()) return field_error(path, "expected a boolean, got " + shown(*it));
      SERVE_RETURN_IF_ERROR(set(it->get<bool>(), path));
    }
  }
  if (const Json* th = field(doc, "thinking")) {
    if (!th->is_object())
      return field_error("thinking",
                         "expected {\"type\": \"enabled\" | \"disabled\"}, got " + shown(*th));
    for (auto it = th->begin(); it != th->end(); ++it) {
      if (it.key() != "type")
        return field_error("thinking." + it.key(), "unknown field (accepted: type)");
    }
    const Json* type = field(*th, "type");
    if (type == nullptr || (*type != "enabled" && *type != "disabled")) {
      return field_error("thinking.type", "expected \"enabled\" or \"disabled\", got " +
                                              (type ? shown(*type) : "nothing"));
    }
    SERVE_RETURN_IF_ERROR(set(*type == "enabled", "thinking.type"));
  }
  std::optional<chat::ReasoningEffort> effort;
  if (const Json* re = field(doc, "reasoning_effort")) {
    if (*re == "none")
      effort = chat::ReasoningEffort::kNone;
    else if (*re == "low" || *re == "medium" || *re == "high")
      effort = chat::ReasoningEffort::kHigh;
    else if (*re == "max")
      effort = chat::ReasoningEffort::kMax;
    else {
      return field_error(
          "reasoning_effort",
          "expected \"none\", \"low\", \"medium\", \"high\" or \"max\", got " + shown(*re));
    }
  }
  const bool thinking = on.value_or(effort && *effort != chat::ReasoningEffort::kNone);
  render->thinking_mode = thinking ? chat::ThinkingMode::kThinking : chat::ThinkingMode::kChat;
  render->reasoning_effort =
      !thinking ? chat::ReasoningEffort::kNone : effort.value_or(chat::ReasoningEffort::kHigh);
  return {};
}

Error parse_chat_logprobs(const Json& doc, GenParams* g) {
  bool logprobs = false;
  std::optional<int64_t> top;
  SERVE_RETURN_IF_ERROR(get_bool(doc, "logprobs", "logprobs", &logprobs));
  SERVE_RETURN_IF_ERROR(get_int(doc, "top_logprobs", 0, 20, &top));
  if (top && !logprobs) return field_error("top_logprobs", "only allowed when logprobs is true");
  g->top_logprobs = logprobs ? int32_t(top.value_or(0)) : -1;
  return {};
}

Error parse_response_format(const Json& doc) {
  const Json* rf = field(doc, "response_format");
  if (rf == nullptr) return {};
  if (!rf->is_object())
    return field_error("response_format", "expected an object, got " + shown(*rf));
  const Json* type = field(*rf, "type");
  if (type == nullptr || *type != "text") {
    return field_error("response_format.type",
                       "only \"text\" is supported (no constrained decoding), got " +
                           (type ? shown(*type) : "nothing"));
  }
  return {};
}

Error parse_messages(const Json& doc, const std::vector<std::string>& tools, ChatRequest* r) {
  const Json* list = field(doc, "messages");
  if (list == nullptr) return field_error("messages", "missing");
  if (!list->is_array() || list->empty()) {
    return field_error("messages", "expected a non-empty array of messages, got " + shown(*list));
  }
  Json wrapped = {{"messages", *list}};
  SERVE_RETURN_IF_ERROR(join_content_parts(&wrapped["messages"]));
  if (!tools.empty()) wrapped["tools"] = doc["tools"];
  Result<std::vector<chat::Message>> ms = chat::messages_from_json(wrapped);
  if (!ms.ok()) return api_error_from_status(ms.status());
  r->messages = std::move(ms).value();
  return {};
}

}  // namespace

std::string forced_tool_prefill(const ChatRequest& r) {
  if (r.tool_choice != ToolChoice::kRequired && r.tool_choice != ToolChoice::kNamed) return "";
  std::string out;
  if (r.render.thinking_mode == chat::ThinkingMode::kThinking) out = chat::kThinkEnd;
  out.append("\n\n<").append(chat::kDsml).append("tool_calls>\n");
  if (r.tool_choice == ToolChoice::kNamed) {
    out.append("<").append(chat::kDsml).append("invoke name=\"");
    out.append(r.tool_choice_name).append("\">\n");
  }
  return out;
}

std::variant<ChatRequest, ApiError> parse_chat_request(std::string_view body,
                                                       const ServedModel& m) {
  std::variant<Json, ApiError> parsed = parse_body(body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const Json& doc = std::get<Json>(parsed);
  ChatRequest r;
  SERVE_RETURN_IF_ERROR(check_model(doc, m, &r.model));
  SERVE_RETURN_IF_ERROR(check_known_fields(doc, /*chat=*/true));
  std::vector<std::string> tools;
  SERVE_RETURN_IF_ERROR(parse_tools(doc, &tools));
  SERVE_RETURN_IF_ERROR(parse_messages(doc, tools, &r));
  r.has_tools = !tools.empty();
  SERVE_RETURN_IF_ERROR(parse_tool_choice(doc, tools, &r));
  SERVE_RETURN_IF_ERROR(parse_gen(doc, m, &r.gen));
  SERVE_RETURN_IF_ERROR(parse_chat_logprobs(doc, &r.gen));
  SERVE_RETURN_IF_ERROR(parse_response_format(doc));
  SERVE_RETURN_IF_ERROR(parse_thinking(doc, &r.render));
  return r;
}

}  // namespace frugal::serve
