// Request bodies -> CompletionRequest, and the generation parameters both endpoints share
// (api_request.h lists the accepted fields; chat-only parsing is in api_chat.cpp).
#include "serve/api_request.h"

#include <cmath>
#include <limits>
#include <utility>

#include "serve/api_fields.h"

namespace frugal::serve {

using detail::as_int;
using detail::check_int;
using detail::check_known_fields;
using detail::check_model;
using detail::Error;
using detail::field;
using detail::field_error;
using detail::get_bool;
using detail::get_int;
using detail::get_number;
using detail::Json;
using detail::parse_body;
using detail::parse_gen;
using detail::shown;

namespace {

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

}  // namespace

// Everything GenParams holds except logprobs, whose form differs per endpoint.
Error detail::parse_gen(const Json& doc, const ServedModel& m, GenParams* g) {
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
