// Request bodies -> ChatRequest / CompletionRequest (api_request.h lists the accepted fields).
#include "serve/api_request.h"

#include <cmath>
#include <limits>
#include <span>
#include <utility>

#include "chat/py_json.h"

namespace frugal::serve {
namespace {

using chat::Json;
using Error = std::optional<ApiError>;  // nullopt = fine

// Returns the ApiError of `expr` (an Error) from the enclosing function.
#define SERVE_RETURN_IF_ERROR(expr)                        \
  do {                                                     \
    if (Error serve_error_ = (expr)) return *serve_error_; \
  } while (0)

ApiError field_error(std::string param, const std::string& what) {
  ApiError e;
  e.message = param + ": " + what;
  e.param = std::move(param);
  return e;
}

// A value as JSON text for "got ..." parts of messages (shortened).
std::string shown(const Json& v) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string num_text(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<int64_t>(v));
  }
  return chat::py_float_repr(v);
}

// An optional field: nullptr when absent or null.
const Json* field(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

struct Range {
  double lo, hi;  // hi = inf: no upper bound
  bool lo_open = false;
};

std::string range_text(const Range& r) {
  if (std::isinf(r.hi)) return std::string(r.lo_open ? "> " : ">= ") + num_text(r.lo);
  return std::string(r.lo_open ? "(" : "[") + num_text(r.lo) + ", " + num_text(r.hi) + "]";
}

Error get_number(const Json& obj, const char* key, const Range& r, float* out) {
  const Json* v = field(obj, key);
  if (v == nullptr) return {};
  const std::string expected = "expected a number " + std::string(std::isinf(r.hi) ? "" : "in ") +
                               range_text(r) + ", got " + shown(*v);
  if (!v->is_number()) return field_error(key, expected);
  const double x = v->get<double>();
  if (!std::isfinite(x) || !std::isfinite(static_cast<float>(x)) || x < r.lo || x > r.hi ||
      (r.lo_open && x == r.lo)) {
    return field_error(key, expected);
  }
  *out = static_cast<float>(x);
  return {};
}

// An integral JSON number (10 and 10.0 alike) as int64; nullopt for anything else.
std::optional<int64_t> as_int(const Json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return int64_t(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) return int64_t(d);
  }
  return std::nullopt;
}

std::string int_range_text(int64_t lo, int64_t hi) {
  if (hi == std::numeric_limits<int64_t>::max()) return ">= " + std::to_string(lo);
  return "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

Error check_int(const Json& v, const std::string& param, int64_t lo, int64_t hi, int64_t* out) {
  const std::optional<int64_t> x = as_int(v);
  if (!x || *x < lo || *x > hi) {
    return field_error(param,
                       "expected an integer " + int_range_text(lo, hi) + ", got " + shown(v));
  }
  *out = *x;
  return {};
}

Error get_int(const Json& obj, const char* key, int64_t lo, int64_t hi,
              std::optional<int64_t>* out) {
  const Json* v = field(obj, key);
  if (v == nullptr) return {};
  int64_t x = 0;
  SERVE_RETURN_IF_ERROR(check_int(*v, key, lo, hi, &x));
  *out = x;
  return {};
}

Error get_bool(const Json& obj, const char* key, const std::string& param, bool* out) {
  const Json* v = field(obj, key);
  if (v == nullptr) return {};
  if (!v->is_boolean()) return field_error(param, "expected a boolean, got " + shown(*v));
  *out = v->get<bool>();
  return {};
}

// Fields both endpoints accept, then each endpoint's own.
constexpr std::string_view kSharedFields[] = {"model",
                                              "max_tokens",
                                              "temperature",
                                              "top_p",
                                              "frequency_penalty",
                                              "presence_penalty",
                                              "logit_bias",
                                              "seed",
                                              "stop",
                                              "n",
                                              "stream",
                                              "stream_options",
                                              "logprobs",
                                              "top_k",
                                              "min_p",
                                              "repetition_penalty",
                                              "ignore_eos",
                                              "user"};
constexpr std::string_view kChatFields[] = {"messages",
                                            "tools",
                                            "tool_choice",
                                            "max_completion_tokens",
                                            "top_logprobs",
                                            "response_format",
                                            "reasoning_effort",
                                            "thinking",
                                            "chat_template_kwargs",
                                            "metadata",
                                            "store",
                                            "service_tier",
                                            "parallel_tool_calls"};
constexpr std::string_view kCompletionFields[] = {"prompt", "echo", "suffix", "best_of"};

bool listed(std::string_view key, std::span<const std::string_view> list) {
  for (std::string_view k : list) {
    if (k == key) return true;
  }
  return false;
}

Error check_known_fields(const Json& doc, bool chat) {
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& key = it.key();
    const std::span<const std::string_view> own =
        chat ? std::span<const std::string_view>(kChatFields) : kCompletionFields;
    if (listed(key, kSharedFields) || listed(key, own)) continue;
    ApiError e;
    e.message = "unknown field '" + key + "' (not supported by this server)";
    e.param = key;
    return e;
  }
  return {};
}

std::variant<Json, ApiError> parse_body(std::string_view body) {
  Json doc;
  try {
    doc = Json::parse(body);
  } catch (const Json::parse_error& ex) {
    std::string detail = ex.what();  // "[json.exception.parse_error.101] parse error at ..."
    if (const size_t p = detail.find("] "); p != std::string::npos) detail = detail.substr(p + 2);
    ApiError e;
    e.message = "request body: invalid JSON: " + detail;
    return e;
  }
  if (!doc.is_object()) {
    ApiError e;
    e.message = "request body: expected a JSON object, got " + std::string(doc.type_name());
    return e;
  }
  return doc;
}

Error check_model(const Json& doc, const ServedModel& m, std::string* out) {
  auto it = doc.find("model");
  if (it == doc.end() || it->is_null()) {
    return field_error("model", "missing (this server serves '" + m.id + "')");
  }
  if (!it->is_string()) return field_error("model", "expected a string, got " + shown(*it));
  *out = it->get<std::string>();
  if (*out != m.id) {
    ApiError e;
    e.status = 404;
    e.message = "The model '" + *out + "' does not exist; this server serves '" + m.id + "'";
    e.param = "model";
    e.code = "model_not_found";
    return e;
  }
  return {};
}

Error parse_stop(const Json& doc, std::vector<std::string>* out) {
  const Json* v = field(doc, "stop");
  if (v == nullptr) return {};
  if (v->is_string()) {
    if (v->get<std::string>().empty()) return field_error("stop", "expected a non-empty string");
    out->push_back(v->get<std::string>());
    return {};
  }
  if (!v->is_array()) {
    return field_error("stop", "expected a string or an array of strings, got " + shown(*v));
  }
  if (v->size() > 16) {
    return field_error("stop",
                       "expected at most 16 stop strings, got " + std::to_string(v->size()));
  }
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& s = (*v)[i];
    if (!s.is_string() || s.get<std::string>().empty()) {
      return field_error("stop[" + std::to_string(i) + "]",
                         "expected a non-empty string, got " + shown(s));
    }
    out->push_back(s.get<std::string>());
  }
  return {};
}

Error parse_logit_bias(const Json& doc, int32_t vocab_size, sample::SamplerOptions* o) {
  const Json* v = field(doc, "logit_bias");
  if (v == nullptr) return {};
  if (!v->is_object()) {
    return field_error("logit_bias", "expected an object {\"<token id>\": bias}, got " + shown(*v));
  }
  for (auto it = v->begin(); it != v->end(); ++it) {
    const std::string& key = it.key();
    bool digits = !key.empty() && key.size() <= 10;
    for (char c : key) digits = digits && c >= '0' && c <= '9';
    const int64_t id = digits ? std::stoll(key) : -1;
    if (id < 0 || id >= vocab_size) {
      return field_error("logit_bias", "key \"" + key +
                                           "\" is not a token id (expected an integer in [0, " +
                                           std::to_string(vocab_size) + "))");
    }
    const Json& b = it.value();
    if (!b.is_number() || !std::isfinite(b.get<double>()) || b.get<double>() < -100 ||
        b.get<double>() > 100) {
      return field_error("logit_bias",
                         "token " + key + ": expected a bias in [-100, 100], got " + shown(b));
    }
    o->logit_bias.push_back({int32_t(id), b.get<float>()});
  }
  return {};
}

Error parse_seed(const Json& doc, GenParams* g) {
  const Json* v = field(doc, "seed");
  if (v == nullptr) return {};
  if (v->is_number_unsigned()) {
    g->sampling.seed = v->get<uint64_t>();
  } else if (std::optional<int64_t> x = as_int(*v)) {
    g->sampling.seed = static_cast<uint64_t>(*x);
  } else {
    return field_error("seed", "expected an integer, got " + shown(*v));
  }
  g->seed_given = true;
  return {};
}

Error parse_stream(const Json& doc, GenParams* g) {
  SERVE_RETURN_IF_ERROR(get_bool(doc, "stream", "stream", &g->stream));
  const Json* so = field(doc, "stream_options");
  if (so == nullptr) return {};
  if (!g->stream) return field_error("stream_options", "only allowed when stream is true");
  if (!so->is_object()) {
    return field_error("stream_options",
                       "expected an object {\"include_usage\": bool}, got " + shown(*so));
  }
  for (auto it = so->begin(); it != so->end(); ++it) {
    if (it.key() != "include_usage") {
      return field_error("stream_options." + it.key(), "unknown field (accepted: include_usage)");
    }
  }
  return get_bool(*so, "include_usage", "stream_options.include_usage", &g->include_usage);
}

// The accepted-but-unused OpenAI fields still get their types checked.
Error check_unused_fields(const Json& doc) {
  struct Expect {
    const char* key;
    Json::value_t type;
    const char* what;
  };
  static const Expect kExpect[] = {{"user", Json::value_t::string, "a string"},
                                   {"metadata", Json::value_t::object, "an object"},
                                   {"store", Json::value_t::boolean, "a boolean"},
                                   {"service_tier", Json::value_t::string, "a string"},
                                   {"parallel_tool_calls", Json::value_t::boolean, "a boolean"}};
  for (const Expect& e : kExpect) {
    const Json* v = field(doc, e.key);
    if (v != nullptr && v->type() != e.type) {
      return field_error(e.key, std::string("expected ") + e.what + ", got " + shown(*v));
    }
  }
  return {};
}

// Everything GenParams holds except logprobs, whose form differs per endpoint.
Error parse_gen(const Json& doc, const ServedModel& m, GenParams* g) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t ctx = m.context_length > 0 ? m.context_length : kMax;
  std::optional<int64_t> max_tokens, max_completion_tokens;
  SERVE_RETURN_IF_ERROR(get_int(doc, "max_tokens", 1, ctx, &max_tokens));
  SERVE_RETURN_IF_ERROR(get_int(doc, "max_completion_tokens", 1, ctx, &max_completion_tokens));
  if (max_tokens && max_completion_tokens && *max_tokens != *max_completion_tokens) {
    return field_error("max_completion_tokens", "disagrees with max_tokens (give one of them)");
  }
  g->max_tokens = max_completion_tokens ? max_completion_tokens : max_tokens;

  sample::SamplerOptions& o = g->sampling;
  const double inf = std::numeric_limits<double>::infinity();
  SERVE_RETURN_IF_ERROR(get_number(doc, "temperature", {0, 2}, &o.temperature));
  SERVE_RETURN_IF_ERROR(get_number(doc, "top_p", {0, 1, true}, &o.top_p));
  SERVE_RETURN_IF_ERROR(get_number(doc, "frequency_penalty", {-2, 2}, &o.frequency_penalty));
  SERVE_RETURN_IF_ERROR(get_number(doc, "presence_penalty", {-2, 2}, &o.presence_penalty));
  SERVE_RETURN_IF_ERROR(get_number(doc, "min_p", {0, 1}, &o.min_p));
  SERVE_RETURN_IF_ERROR(
      get_number(doc, "repetition_penalty", {0, inf, true}, &o.repetition_penalty));
  std::optional<int64_t> top_k, n;
  SERVE_RETURN_IF_ERROR(get_int(doc, "top_k", -1, std::numeric_limits<int32_t>::max(), &top_k));
  if (top_k) o.top_k = *top_k < 0 ? 0 : int32_t(*top_k);  // vLLM's -1 = off
  SERVE_RETURN_IF_ERROR(parse_logit_bias(doc, m.vocab_size, &o));
  SERVE_RETURN_IF_ERROR(parse_seed(doc, g));
  SERVE_RETURN_IF_ERROR(parse_stop(doc, &g->stop));
  SERVE_RETURN_IF_ERROR(get_int(doc, "n", 1, m.max_n, &n));
  if (n) g->n = int32_t(*n);
  SERVE_RETURN_IF_ERROR(parse_stream(doc, g));
  SERVE_RETURN_IF_ERROR(get_bool(doc, "ignore_eos", "ignore_eos", &g->ignore_eos));
  return check_unused_fields(doc);
}

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

ApiError api_error_from_status(const Status& s) {
  ApiError e;
  e.message = s.message();
  const size_t colon = e.message.find(": ");
  bool path = colon != std::string::npos && colon > 0;
  for (size_t i = 0; path && i < colon; ++i) {
    const char c = e.message[i];
    path = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '[' || c == ']';
  }
  if (path) e.param = e.message.substr(0, colon);
  if (s.code() == StatusCode::kInternal) {
    e.status = 500;
    e.type = "server_error";
    e.param.clear();
  } else if (s.code() == StatusCode::kResourceExhausted) {
    e.status = 503;
    e.type = "server_error";
  }
  return e;
}

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

namespace {

Error check_ids(const Json& list, const std::string& where, int32_t vocab,
                std::vector<int32_t>* out) {
  for (size_t i = 0; i < list.size(); ++i) {
    int64_t id = 0;
    SERVE_RETURN_IF_ERROR(
        check_int(list[i], where + "[" + std::to_string(i) + "]", 0, int64_t(vocab) - 1, &id));
    out->push_back(int32_t(id));
  }
  return {};
}

Error parse_prompt(const Json& doc, const ServedModel& m, CompletionRequest* r) {
  const Json* p = field(doc, "prompt");
  if (p == nullptr)
    return field_error("prompt", "missing (expected a string or an array of token ids)");
  const std::string kBatch = "a batch of prompts is not supported; send one request per prompt";
  if (p->is_string()) {
    if (p->get<std::string>().empty()) return field_error("prompt", "expected a non-empty string");
    r->prompt_text = p->get<std::string>();
    return {};
  }
  if (!p->is_array() || p->empty()) {
    return field_error("prompt",
                       "expected a non-empty string or array of token ids, got " + shown(*p));
  }
  const Json& first = (*p)[0];
  if (first.is_string() || first.is_array()) {
    if (p->size() > 1)
      return field_error("prompt", kBatch + " (got " + std::to_string(p->size()) + ")");
    if (first.is_string()) {
      if (first.get<std::string>().empty())
        return field_error("prompt[0]", "expected a non-empty string");
      r->prompt_text = first.get<std::string>();
      return {};
    }
    if (first.empty()) return field_error("prompt[0]", "expected a non-empty array of token ids");
    return check_ids(first, "prompt[0]", m.vocab_size, &r->prompt_ids);
  }
  return check_ids(*p, "prompt", m.vocab_size, &r->prompt_ids);
}

}  // namespace

std::variant<CompletionRequest, ApiError> parse_completion_request(std::string_view body,
                                                                   const ServedModel& m) {
  std::variant<Json, ApiError> parsed = parse_body(body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const Json& doc = std::get<Json>(parsed);
  CompletionRequest r;
  SERVE_RETURN_IF_ERROR(check_model(doc, m, &r.model));
  SERVE_RETURN_IF_ERROR(check_known_fields(doc, /*chat=*/false));
  SERVE_RETURN_IF_ERROR(parse_prompt(doc, m, &r));
  SERVE_RETURN_IF_ERROR(get_bool(doc, "echo", "echo", &r.echo));
  std::optional<int64_t> logprobs;
  SERVE_RETURN_IF_ERROR(get_int(doc, "logprobs", 0, 5, &logprobs));
  r.gen.top_logprobs = logprobs ? int32_t(*logprobs) : -1;
  if (const Json* s = field(doc, "suffix"); s != nullptr && *s != "") {
    return field_error("suffix", "not supported (only null or \"\")");
  }
  if (const Json* b = field(doc, "best_of");
      b != nullptr && as_int(*b) != std::optional<int64_t>(1)) {
    return field_error("best_of", "only 1 is supported, got " + shown(*b));
  }
  SERVE_RETURN_IF_ERROR(parse_gen(doc, m, &r.gen));
  return r;
}

}  // namespace frugal::serve
