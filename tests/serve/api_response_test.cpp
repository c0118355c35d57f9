// Response bodies: valid JSON with OpenAI's field names and types.
#include "serve/api_response.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "chat/py_json.h"

namespace frugal::serve {
namespace {

using chat::Json;

Json parse(const std::string& body) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << body;
  return j;
}

const ResponseMeta kMeta{.id = "chatcmpl-abc", .created = 1700000000, .model = "tiny"};

TEST(ApiResponse, ErrorBody) {
  ApiError e;
  e.status = 404;
  e.message = "The model 'x' does not exist";
  e.param = "model";
  e.code = "model_not_found";
  Json j = parse(error_body(e));
  EXPECT_EQ(j["error"]["message"], "The model 'x' does not exist");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "model");
  EXPECT_EQ(j["error"]["code"], "model_not_found");
  ApiError plain;
  plain.message = "request body: invalid JSON: x";
  j = parse(error_body(plain));
  EXPECT_TRUE(j["error"]["param"].is_null());
  EXPECT_TRUE(j["error"]["code"].is_null());
}

TEST(ApiResponse, ChatCompletionWithToolCalls) {
  // A parser that saw reasoning, then only a tool call.
  OutputParser p(chat::ThinkingMode::kThinking, true, "", 3);
  (void)p.push(
      "Need weather.</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n"
      "<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n</｜DSML｜tool_calls>");
  (void)p.finish(true);
  const std::vector<ChatChoice> choices = {chat_choice(p, 0, "tool_calls")};
  Json j = parse(chat_completion_body(
      kMeta, choices, {.prompt_tokens = 10, .completion_tokens = 5, .cached_tokens = 4}));
  EXPECT_EQ(j["id"], "chatcmpl-abc");
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "tiny");
  ASSERT_EQ(j["choices"].size(), 1u);
  const Json& c = j["choices"][0];
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["finish_reason"], "tool_calls");
  EXPECT_TRUE(c["logprobs"].is_null());
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_TRUE(c["message"]["content"].is_null());
  EXPECT_EQ(c["message"]["reasoning_content"], "Need weather.");
  ASSERT_EQ(c["message"]["tool_calls"].size(), 1u);
  const Json& tc = c["message"]["tool_calls"][0];
  EXPECT_EQ(tc["id"], p.tool_call_ids()[0]);
  EXPECT_EQ(tc["type"], "function");
  EXPECT_EQ(tc["function"]["name"], "get_weather");
  EXPECT_EQ(tc["function"]["arguments"], "{\"city\": \"Paris\"}");
  EXPECT_EQ(Json::parse(tc["function"]["arguments"].get<std::string>())["city"], "Paris");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 10);
  EXPECT_EQ(j["usage"]["completion_tokens"], 5);
  EXPECT_EQ(j["usage"]["total_tokens"], 15);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
  EXPECT_FALSE(j["usage"].contains("completion_tokens_details"));
}

TEST(ApiResponse, ChatCompletionPlainWithLogprobs) {
  ChatChoice c;
  c.index = 1;
  c.content = "Hi";
  c.finish_reason = "length";
  c.logprobs = std::vector<TokenLogprob>{
      {.token = "H", .logprob = -0.1f, .top = {{"H", -0.1f}, {"Y", -2.5f}}},
      {.token = "\xC3", .logprob = -std::numeric_limits<float>::infinity(), .top = {}}};
  Json j = parse(chat_completion_body(kMeta, {c}, {.reasoning_tokens = 0}));
  const Json& ch = j["choices"][0];
  EXPECT_EQ(ch["index"], 1);
  EXPECT_EQ(ch["message"]["content"], "Hi");
  EXPECT_FALSE(ch["message"].contains("reasoning_content"));
  EXPECT_FALSE(ch["message"].contains("tool_calls"));
  EXPECT_EQ(ch["finish_reason"], "length");
  const Json& lp = ch["logprobs"]["content"];
  ASSERT_EQ(lp.size(), 2u);
  EXPECT_EQ(lp[0]["token"], "H");
  EXPECT_EQ(lp[0]["logprob"].get<double>(), -0.1);  // the float's shortest form
  EXPECT_EQ(lp[0]["bytes"], Json::array({72}));
  ASSERT_EQ(lp[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(lp[0]["top_logprobs"][1]["token"], "Y");
  EXPECT_EQ(lp[0]["top_logprobs"][1]["logprob"].get<double>(), -2.5);
  EXPECT_EQ(lp[0]["top_logprobs"][1]["bytes"], Json::array({89}));
  EXPECT_EQ(lp[1]["token"], "\xEF\xBF\xBD");       // a partial character: U+FFFD in the text...
  EXPECT_EQ(lp[1]["bytes"], Json::array({0xC3}));  // ...and the exact byte here
  EXPECT_EQ(lp[1]["logprob"].get<double>(), -9999.0);
  EXPECT_EQ(j["usage"]["completion_tokens_details"]["reasoning_tokens"], 0);
}

TEST(ApiResponse, ChatChunks) {
  ChatChunk first;
  first.index = 2;
  first.delta.role = true;
  Json j = parse(chat_chunk_body(kMeta, first));
  EXPECT_EQ(j["object"], "chat.completion.chunk");
  const Json& c = j["choices"][0];
  EXPECT_EQ(c["index"], 2);
  EXPECT_EQ(c["delta"], Json({{"role", "assistant"}}));
  EXPECT_TRUE(c["finish_reason"].is_null());
  EXPECT_TRUE(c["logprobs"].is_null());

  OutputDelta reasoning;
  reasoning.kind = OutputDelta::Kind::kReasoning;
  reasoning.text = "hmm";
  ChatChunk chunk;
  chunk.delta = chat_delta(reasoning);
  j = parse(chat_chunk_body(kMeta, chunk));
  EXPECT_EQ(j["choices"][0]["delta"], Json({{"reasoning_content", "hmm"}}));

  OutputDelta call;
  call.kind = OutputDelta::Kind::kToolCall;
  call.tool_index = 1;
  call.tool_id = "call_x";
  call.tool_name = "f";
  call.arguments = "{}";
  chunk.delta = chat_delta(call);
  chunk.finish_reason = "tool_calls";
  j = parse(chat_chunk_body(kMeta, chunk));
  const Json& tc = j["choices"][0]["delta"]["tool_calls"][0];
  EXPECT_EQ(tc["index"], 1);
  EXPECT_EQ(tc["id"], "call_x");
  EXPECT_EQ(tc["type"], "function");
  EXPECT_EQ(tc["function"]["name"], "f");
  EXPECT_EQ(tc["function"]["arguments"], "{}");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");

  OutputDelta content;
  content.text = "Hello";
  chunk.delta = chat_delta(content);
  chunk.finish_reason = "";
  TokenLogprob hello;
  hello.token = "Hello";
  hello.logprob = -0.5f;
  chunk.logprobs = std::vector<TokenLogprob>{hello};
  j = parse(chat_chunk_body(kMeta, chunk));
  EXPECT_EQ(j["choices"][0]["delta"], Json({{"content", "Hello"}}));
  EXPECT_EQ(j["choices"][0]["logprobs"]["content"][0]["token"], "Hello");

  j = parse(chat_usage_chunk_body(kMeta, {.prompt_tokens = 3, .completion_tokens = 2}));
  EXPECT_EQ(j["object"], "chat.completion.chunk");
  EXPECT_TRUE(j["choices"].is_array());
  EXPECT_TRUE(j["choices"].empty());
  EXPECT_EQ(j["usage"]["total_tokens"], 5);
}

TEST(ApiResponse, Completions) {
  CompletionChoice c;
  c.text = "é ab";
  c.finish_reason = "stop";
  c.logprobs = std::vector<TokenLogprob>{
      {.token = "é", .logprob = std::nanf(""), .top = {}},  // an echoed first prompt token
      {.token = " a", .logprob = -1.0f, .top = {{" a", -1.0f}, {" b", -1.5f}}},
      {.token = "b", .logprob = -0.25f, .top = {{"b", -0.25f}}}};
  Json j = parse(completion_body({.id = "cmpl-1", .created = 5, .model = "tiny"}, {c},
                                 {.prompt_tokens = 1, .completion_tokens = 2}));
  EXPECT_EQ(j["object"], "text_completion");
  const Json& ch = j["choices"][0];
  EXPECT_EQ(ch["text"], "é ab");
  EXPECT_EQ(ch["finish_reason"], "stop");
  const Json& lp = ch["logprobs"];
  EXPECT_EQ(lp["tokens"], Json::array({"é", " a", "b"}));
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_EQ(lp["token_logprobs"][1].get<double>(), -1.0);
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  EXPECT_EQ(lp["top_logprobs"][1][" b"].get<double>(), -1.5);
  EXPECT_EQ(lp["text_offset"], Json::array({0, 1, 3}));  // code points, as Python's len()

  CompletionChoice piece;
  piece.index = 1;
  piece.text = "x";
  j = parse(completion_chunk_body({.id = "cmpl-1", .created = 5, .model = "tiny"}, piece));
  EXPECT_EQ(j["choices"][0]["text"], "x");
  EXPECT_EQ(j["choices"][0]["index"], 1);
  EXPECT_TRUE(j["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_FALSE(j.contains("usage"));
  j = parse(completion_usage_chunk_body(kMeta, {.prompt_tokens = 1}));
  EXPECT_TRUE(j["choices"].empty());
  EXPECT_EQ(j["usage"]["prompt_tokens"], 1);
}

TEST(ApiResponse, ModelsAndSse) {
  Json j = parse(models_body({.id = "tiny", .context_length = 4096, .vocab_size = 10}, 42));
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], "tiny");
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_EQ(j["data"][0]["created"], 42);
  EXPECT_EQ(j["data"][0]["owned_by"], "frugal");
  EXPECT_EQ(j["data"][0]["context_length"], 4096);
  EXPECT_EQ(sse_event("{\"a\":1}"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
}

}  // namespace
}  // namespace frugal::serve
