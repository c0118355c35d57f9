// Response bodies and stream chunks (api_response.h).
#include "serve/api_response.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "chat/py_json.h"

namespace frugal::serve {
namespace {

using chat::Json;

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json string_or_null(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

// A float as the double with the same shortest decimal form (-0.1f -> -0.1, not
// -0.10000000149011612); -inf -> -9999.0 as OpenAI writes it; NaN -> null.
Json logprob_json(float x) {
  if (std::isnan(x)) return nullptr;
  if (!std::isfinite(x)) return -9999.0;
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf) - 1, x);
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

Json bytes_json(const std::string& s) {
  Json b = Json::array();
  for (char c : s) b.push_back(int(static_cast<unsigned char>(c)));
  return b;
}

Json usage_json(const Usage& u) {
  Json j = {{"prompt_tokens", u.prompt_tokens},
            {"completion_tokens", u.completion_tokens},
            {"total_tokens", u.prompt_tokens + u.completion_tokens},
            {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
  if (u.reasoning_tokens >= 0) {
    j["completion_tokens_details"] = {{"reasoning_tokens", u.reasoning_tokens}};
  }
  return j;
}

Json head(const ResponseMeta& m, const char* object) {
  return {{"id", m.id}, {"object", object}, {"created", m.created}, {"model", m.model}};
}

// Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob",
// "bytes"}]}]}
Json chat_logprobs_json(const std::optional<std::vector<TokenLogprob>>& lps) {
  if (!lps) return nullptr;
  Json content = Json::array();
  for (const TokenLogprob& t : *lps) {
    Json top = Json::array();
    for (const auto& [tok, lp] : t.top) {
      top.push_back({{"token", tok}, {"logprob", logprob_json(lp)}, {"bytes", bytes_json(tok)}});
    }
    content.push_back({{"token", t.token},
                       {"logprob", logprob_json(t.logprob)},
                       {"bytes", bytes_json(t.token)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}};
}

// Completions: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}
Json completion_logprobs_json(const std::optional<std::vector<TokenLogprob>>& lps, int64_t offset) {
  if (!lps) return nullptr;
  Json tokens = Json::array(), token_lps = Json::array(), tops = Json::array(),
       offsets = Json::array();
  for (const TokenLogprob& t : *lps) {
    tokens.push_back(t.token);
    token_lps.push_back(logprob_json(t.logprob));
    if (std::isnan(t.logprob) && t.top.empty()) {
      tops.push_back(nullptr);
    } else {
      Json top = Json::object();
      for (const auto& [tok, lp] : t.top) top[tok] = logprob_json(lp);
      tops.push_back(std::move(top));
    }
    offsets.push_back(offset);
    offset += code_points(t.token);
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_lps)},
          {"top_logprobs", std::move(tops)},
          {"text_offset", std::move(offsets)}};
}

Json tool_call_json(const std::string& id, const std::string& name, const std::string& args) {
  return {{"id", id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", args}}}};
}

Json completion_choice_json(const CompletionChoice& c) {
  return {{"text", c.text},
          {"index", c.index},
          {"logprobs", completion_logprobs_json(c.logprobs, c.text_offset)},
          {"finish_reason", string_or_null(c.finish_reason)}};
}

}  // namespace

std::string error_body(const ApiError& e) {
  return dump({{"error",
                {{"message", e.message},
                 {"type", e.type},
                 {"param", string_or_null(e.param)},
                 {"code", string_or_null(e.code)}}}});
}

ChatChoice chat_choice(const OutputParser& parser, int32_t index, std::string finish_reason,
                       std::optional<std::vector<TokenLogprob>> logprobs) {
  ChatChoice c;
  c.index = index;
  c.content = parser.message().content;
  c.reasoning_content = parser.message().reasoning_content;
  const auto& calls = parser.message().tool_calls;
  for (size_t i = 0; i < calls.size(); ++i) {
    c.tool_calls.push_back({parser.tool_call_ids()[i], calls[i].name, calls[i].arguments});
  }
  c.finish_reason = std::move(finish_reason);
  c.logprobs = std::move(logprobs);
  return c;
}

std::string chat_completion_body(const ResponseMeta& meta, const std::vector<ChatChoice>& choices,
                                 const Usage& usage) {
  Json j = head(meta, "chat.completion");
  Json list = Json::array();
  for (const ChatChoice& c : choices) {
    Json msg = {
        {"role", "assistant"},
        {"content", c.content.empty() && !c.tool_calls.empty() ? Json(nullptr) : Json(c.content)}};
    if (!c.reasoning_content.empty()) msg["reasoning_content"] = c.reasoning_content;
    if (!c.tool_calls.empty()) {
      Json calls = Json::array();
      for (const ToolCallOut& tc : c.tool_calls) {
        calls.push_back(tool_call_json(tc.id, tc.name, tc.arguments));
      }
      msg["tool_calls"] = std::move(calls);
    }
    list.push_back({{"index", c.index},
                    {"message", std::move(msg)},
                    {"logprobs", chat_logprobs_json(c.logprobs)},
                    {"finish_reason", string_or_null(c.finish_reason)}});
  }
  j["choices"] = std::move(list);
  j["usage"] = usage_json(usage);
  return dump(j);
}

ChatDelta chat_delta(const OutputDelta& d) {
  ChatDelta delta;
  switch (d.kind) {
    case OutputDelta::Kind::kReasoning:
      delta.reasoning_content = d.text;
      break;
    case OutputDelta::Kind::kContent:
      delta.content = d.text;
      break;
    case OutputDelta::Kind::kToolCall:
      delta.tool_calls.push_back(d);
      break;
  }
  return delta;
}

std::string chat_chunk_body(const ResponseMeta& meta, const ChatChunk& chunk) {
  Json delta = Json::object();
  if (chunk.delta.role) delta["role"] = "assistant";
  if (chunk.delta.content) delta["content"] = *chunk.delta.content;
  if (chunk.delta.reasoning_content) delta["reasoning_content"] = *chunk.delta.reasoning_content;
  if (!chunk.delta.tool_calls.empty()) {
    Json calls = Json::array();
    for (const OutputDelta& tc : chunk.delta.tool_calls) {
      Json call = {{"index", tc.tool_index}};
      call.update(tool_call_json(tc.tool_id, tc.tool_name, tc.arguments));
      calls.push_back(std::move(call));
    }
    delta["tool_calls"] = std::move(calls);
  }
  Json j = head(meta, "chat.completion.chunk");
  Json choice = {{"index", chunk.index},
                 {"delta", std::move(delta)},
                 {"logprobs", chat_logprobs_json(chunk.logprobs)},
                 {"finish_reason", string_or_null(chunk.finish_reason)}};
  j["choices"] = Json::array();
  j["choices"].push_back(std::move(choice));
  return dump(j);
}

std::string chat_usage_chunk_body(const ResponseMeta& meta, const Usage& usage) {
  Json j = head(meta, "chat.completion.chunk");
  j["choices"] = Json::array();
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string completion_body(const ResponseMeta& meta, const std::vector<CompletionChoice>& choices,
                            const Usage& usage) {
  Json j = head(meta, "text_completion");
  Json list = Json::array();
  for (const CompletionChoice& c : choices) list.push_back(completion_choice_json(c));
  j["choices"] = std::move(list);
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string completion_chunk_body(const ResponseMeta& meta, const CompletionChoice& chunk) {
  Json j = head(meta, "text_completion");
  j["choices"] = Json::array();
  j["choices"].push_back(completion_choice_json(chunk));
  return dump(j);
}

std::string completion_usage_chunk_body(const ResponseMeta& meta, const Usage& usage) {
  Json j = head(meta, "text_completion");
  j["choices"] = Json::array();
  j["usage"] = usage_json(usage);
  return dump(j);
}

namespace {

Json model_json(const ServedModel& m, int64_t created) {
  return {{"id", m.id},
          {"object", "model"},
          {"created", created},
          {"owned_by", "frugal"},
          {"context_length", m.context_length}};
}

}  // namespace

std::string models_body(const ServedModel& m, int64_t created) {
  Json j = {{"object", "list"}, {"data", Json::array()}};
  j["data"].push_back(model_json(m, created));
  return dump(j);
}

std::string model_body(const ServedModel& m, int64_t created) {
  return dump(model_json(m, created));
}

int64_t code_points(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string sse_event(std::string_view json) {
  std::string out;
  out.reserve(json.size() + 8);
  out.append("data: ").append(json).append("\n\n");
  return out;
}

}  // namespace frugal::serve
