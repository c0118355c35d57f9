// OpenAI-compatible request bodies -> checked, typed requests (no HTTP here: the front end hands
// over the body text and sends back what these return). Every error names the field it is about
// (ApiError::param) and what was expected, as OpenAI does; nothing is silently clamped.
//
// POST /v1/chat/completions accepts:
//   model                 string, required; must be the served model's id (else 404
//                         model_not_found)
//   messages              non-empty array, required; validated by chat::messages_from_json. A
//                         message's "content" may also be an array of {"type": "text", "text": s}
//                         parts: their texts are joined with "\n\n" (the official encoder's join
//                         for tool-result parts); any other part type is an error.
//   tools                 array of {"type": "function", "function": {"name": [a-zA-Z0-9_-]{1,64},
//                         "description"?: string, "parameters"?: object, ...}}; [] = no tools.
//                         Rendered into the system prompt as the official encoder does.
//   tool_choice           "none" | "auto" | "required" | {"type": "function", "function":
//                         {"name": a declared tool}}; only with tools. Default: auto with tools.
//   max_tokens, max_completion_tokens   integer in [1, context_length]; both: must agree
//   temperature [0, 2] (default 1), top_p (0, 1], frequency_penalty / presence_penalty [-2, 2]
//   logit_bias            {"<token id>": bias in [-100, 100]}, ids in [0, vocab_size)
//   seed                  integer (any int64 or uint64; negative ones wrap to uint64)
//   stop                  string, or array of at most 16 non-empty strings ([] = none)
//   n                     integer in [1, max_n]
//   stream                bool; stream_options {"include_usage": bool} only when stream is true
//   logprobs              bool; top_logprobs integer in [0, 20], only with logprobs: true
//   response_format       only {"type": "text"} (there is no constrained decoding)
//   reasoning_effort      "none" | "low" | "medium" | "high" | "max" (see thinking below)
//   thinking              {"type": "enabled" | "disabled"} (DeepSeek API)
//   chat_template_kwargs  {"thinking": bool, "enable_thinking": bool} (vLLM / SGLang style)
//   extensions            top_k (integer >= 0; -1 = off as in vLLM), min_p [0, 1],
//                         repetition_penalty (> 0), ignore_eos (bool)
//   accepted, unused      user (string), metadata (object), store (bool), service_tier
//                         (string), parallel_tool_calls (bool)
// Any other top-level field is an error ("unknown field 'x'"): a typo must not pass silently.
// null counts as absent for every optional field.
//
// Thinking mode (chat::RenderOptions): chat mode (the prompt closes thinking at once) unless
//   - an explicit switch says so: chat_template_kwargs.thinking, chat_template_kwargs
//     .enable_thinking, or thinking.type; several switches must agree;
//   - or, with no explicit switch, reasoning_effort is given and is not "none".
// Effort: "max" -> kMax (adds the official max-effort prefix); "low", "medium", "high" -> kHigh
// (V4 has only two levels; DeepSeek's API maps low and medium to high as well); "none" -> kNone.
// An explicit switch wins over reasoning_effort (thinking off + effort "max" = chat mode).
//
// POST /v1/completions accepts model, prompt (a string, an array of one string, an array of token
// ids, or an array of one array of ids; batches of prompts are not supported), echo (bool),
// logprobs (integer in [0, 5]), suffix (null or "" only), best_of (null or 1 only), and the
// shared fields above: max_tokens, temperature, top_p, frequency_penalty, presence_penalty,
// logit_bias, seed, stop, n, stream, stream_options, the extensions, user.
// max_tokens absent = generate up to the end of the context (OpenAI's legacy default is 16).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "chat/encoding.h"
#include "core/status.h"
#include "sample/sampler.h"

namespace frugal::serve {

// An OpenAI-style error: {"error": {"message", "type", "param", "code"}}.
struct ApiError {
  int status = 400;     // HTTP status
  std::string message;  // names the field and what was expected
  std::string type = "invalid_request_error";
  std::string param;  // field path: "messages[1].content", "stop[2]"; empty = null
  std::string code;   // e.g. "model_not_found", "context_length_exceeded"; empty = null
};

// A Status whose message starts with a field path ("messages[2].role: missing") -> 400 with that
// path as param. kInternal -> 500 "server_error"; kResourceExhausted -> 503; kUnsupported -> 400.
ApiError api_error_from_status(const Status& s);

struct ServedModel {
  std::string id;
  int64_t context_length = 0;  // tokens
  int32_t vocab_size = 0;
  int32_t max_n = 8;  // the most choices one request may ask for
};

enum class ToolChoice { kNone, kAuto, kRequired, kNamed };

// Generation parameters shared by both endpoints.
struct GenParams {
  std::optional<int64_t> max_tokens;  // nullopt = up to the end of the context
  sample::SamplerOptions sampling;    // seed = 0 when none was given
  bool seed_given = false;
  std::vector<std::string> stop;  // stop strings, non-empty each
  int32_t n = 1;
  int32_t top_logprobs = -1;  // -1 = no logprobs; else alternatives per token (0..20)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool ignore_eos = false;
};

struct ChatRequest {
  std::string model;
  std::vector<chat::Message> messages;  // tools attached as chat::messages_from_json does
  chat::RenderOptions render;
  bool has_tools = false;
  ToolChoice tool_choice = ToolChoice::kNone;  // kAuto when tools are given and no choice
  std::string tool_choice_name;                // kNamed: a declared tool's name
  GenParams gen;
};

struct CompletionRequest {
  std::string model;
  std::optional<std::string> prompt_text;  // set for a text prompt
  std::vector<int32_t> prompt_ids;         // set for a token-id prompt (ids < vocab_size)
  bool echo = false;
  GenParams gen;
};

// What the server puts after the rendered prompt (and hands to OutputParser as its prefill) so
// that the model must call a tool: for tool_choice "required" the DSML opener
// "\n\n<｜DSML｜tool_calls>\n", for a named tool the opener and that tool's invoke line, both
// after "</think>" in thinking mode (the reasoning is skipped: no prefill can force a call after
// a reasoning of the model's own length); "" for none and auto.
std::string forced_tool_prefill(const ChatRequest& r);

std::variant<ChatRequest, ApiError> parse_chat_request(std::string_view body, const ServedModel& m);
std::variant<CompletionRequest, ApiError> parse_completion_request(std::string_view body,
                                                                   const ServedModel& m);

}  // namespace frugal::serve
