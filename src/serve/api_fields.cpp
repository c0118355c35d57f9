// The JSON field helpers shared by the request parsers (api_fields.h).
#include "serve/api_fields.h"

#include <cmath>
#include <limits>
#include <span>
#include <utility>

namespace frugal::serve::detail {
namespace {

std::string num_text(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<int64_t>(v));
  }
  return chat::py_float_repr(v);
}

std::string range_text(const Range& r) {
  if (std::isinf(r.hi)) return std::string(r.lo_open ? "> " : ">= ") + num_text(r.lo);
  return std::string(r.lo_open ? "(" : "[") + num_text(r.lo) + ", " + num_text(r.hi) + "]";
}

std::string int_range_text(int64_t lo, int64_t hi) {
  if (hi == std::numeric_limits<int64_t>::max()) return ">= " + std::to_string(lo);
  return "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
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

}  // namespace

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

// An optional field: nullptr when absent or null.
const Json* field(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
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

}  // namespace frugal::serve::detail
