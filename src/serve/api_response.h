// OpenAI-compatible response bodies and stream chunks, as JSON text ready to send. Text that is
// not valid UTF-8 (a token's partial character in a logprob entry) is written with U+FFFD in
// place of the bad bytes; the "bytes" fields carry the exact bytes.
//
// Shapes (field names as in OpenAI's API reference):
//   chat.completion        {id, object, created, model, choices: [{index, message: {role,
//                          content, reasoning_content?, tool_calls?}, logprobs, finish_reason}],
//                          usage}
//   chat.completion.chunk  {id, object, created, model, choices: [{index, delta, logprobs,
//                          finish_reason}]}; the usage chunk has "choices": [] and "usage"
//   text_completion        {id, object, created, model, choices: [{text, index, logprobs,
//                          finish_reason}], usage}; chunks have the same shape, usage omitted
//   usage                  {prompt_tokens, completion_tokens, total_tokens,
//                          prompt_tokens_details: {cached_tokens},
//                          completion_tokens_details: {reasoning_tokens}?}
// A logprob that is not finite (-inf) is written as -9999.0, as OpenAI does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/parse.h"
#include "serve/api_request.h"
#include "serve/output_parser.h"

namespace frugal::serve {

// {"error": {"message", "type", "param" | null, "code" | null}}
std::string error_body(const ApiError& e);

// What every body of one response shares.
struct ResponseMeta {
  std::string id;       // "chatcmpl-..." / "cmpl-..." (make_id in output_parser.h)
  int64_t created = 0;  // unix seconds
  std::string model;
};

struct TokenLogprob {
  std::string token;  // the token's bytes (may be part of a UTF-8 character)
  float logprob = 0;  // NaN = unknown (completions echo: the first prompt token) -> null
  std::vector<std::pair<std::string, float>> top;  // alternatives, best first
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;      // prompt tokens restored from the prefix cache
  int64_t reasoning_tokens = -1;  // -1 = omit completion_tokens_details
};

// finish_reason values: "stop", "length", "tool_calls"; "" = null (a chunk before the end).

// --- /v1/chat/completions ---

struct ToolCallOut {
  std::string id;  // "call_..."
  std::string name;
  std::string arguments;  // JSON text
};

struct ChatChoice {
  int32_t index = 0;
  std::string content;            // null in the body when there are tool calls and no content
  std::string reasoning_content;  // omitted when empty
  std::vector<ToolCallOut> tool_calls;
  std::string finish_reason;
  std::optional<std::vector<TokenLogprob>> logprobs;  // nullopt -> "logprobs": null
};

// The choice a finished OutputParser describes (message(), tool_call_ids()).
ChatChoice chat_choice(const OutputParser& parser, int32_t index, std::string finish_reason,
                       std::optional<std::vector<TokenLogprob>> logprobs = std::nullopt);

std::string chat_completion_body(const ResponseMeta& meta, const std::vector<ChatChoice>& choices,
                                 const Usage& usage);

struct ChatDelta {
  bool role = false;  // {"role": "assistant"}: the first chunk of each choice
  std::optional<std::string> content;
  std::optional<std::string> reasoning_content;
  std::vector<OutputDelta> tool_calls;  // kToolCall deltas: index, id, name, arguments
};
ChatDelta chat_delta(const OutputDelta& d);  // one parser delta as a chunk's delta

struct ChatChunk {
  int32_t index = 0;
  ChatDelta delta;
  std::string finish_reason;                          // "" = null
  std::optional<std::vector<TokenLogprob>> logprobs;  // the tokens of this chunk
};
std::string chat_chunk_body(const ResponseMeta& meta, const ChatChunk& chunk);
// The last chunk when stream_options.include_usage: "choices": [] and "usage".
std::string chat_usage_chunk_body(const ResponseMeta& meta, const Usage& usage);

// --- /v1/completions ---

struct CompletionChoice {
  int32_t index = 0;
  std::string text;           // the prompt text first when echo
  std::string finish_reason;  // "" = null (chunks)
  std::optional<std::vector<TokenLogprob>> logprobs;
  // text_offset of the first logprob token: code points before it in the choice's whole text
  // (for chunks: the text sent in earlier chunks). Offsets count code points, as Python's len().
  int64_t text_offset = 0;
};
std::string completion_body(const ResponseMeta& meta, const std::vector<CompletionChoice>& choices,
                            const Usage& usage);
std::string completion_chunk_body(const ResponseMeta& meta, const CompletionChoice& chunk);
std::string completion_usage_chunk_body(const ResponseMeta& meta, const Usage& usage);

// --- /v1/models ---

// {"object": "list", "data": [{"id", "object": "model", "created", "owned_by": "frugal",
//  "context_length"}]} (context_length is an extension, as vLLM's max_model_len)
std::string models_body(const ServedModel& m, int64_t created);
// GET /v1/models/ID: the one model object of that list.
std::string model_body(const ServedModel& m, int64_t created);

// Code points of UTF-8 text, as Python's len() counts them (completions' text_offset).
int64_t code_points(std::string_view s);

// --- server-sent events ---

std::string sse_event(std::string_view json);  // "data: " + json + "\n\n"
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace frugal::serve
