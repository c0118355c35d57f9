// Request parsing: every malformed body is refused with the right status, the field it is about
// as param, and a message naming that field; well-formed ones come out as typed requests.
#include "serve/api_request.h"

#include <gtest/gtest.h>

#include <string>
#include <variant>

namespace frugal::serve {
namespace {

const ServedModel kModel{.id = "tiny", .context_length = 4096, .vocab_size = 1000, .max_n = 4};

// A chat body with the required fields and `extra` (",\"k\": v" pairs) appended.
std::string chat_body(const std::string& extra) {
  return R"({"model": "tiny", "messages": [{"role": "user", "content": "hi"}])" + extra + "}";
}
std::string tools_body(const std::string& extra) {
  return chat_body(
      R"(, "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])" +
      extra);
}
std::string completion_body(const std::string& extra) {
  return R"({"model": "tiny", "prompt": "Once")" + extra + "}";
}

struct Bad {
  bool chat;
  std::string body;
  int status;
  std::string param;
};

std::vector<Bad> bad_bodies() {
  const std::string kMsgs = R"("model": "tiny", "messages": )";
  return {
      {true, "{not json", 400, ""},
      {true, "[1, 2]", 400, ""},
      {true, R"({"messages": [{"role": "user", "content": "hi"}]})", 400, "model"},
      {true, R"({"model": 7, "messages": [{"role": "user", "content": "hi"}]})", 400, "model"},
      {true, R"({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})", 404,
       "model"},
      {true, R"({"model": "tiny"})", 400, "messages"},
      {true, "{" + kMsgs + "[]}", 400, "messages"},
      {true, "{" + kMsgs + R"("hi"})", 400, "messages"},
      {true, "{" + kMsgs + R"([{"content": "hi"}]})", 400, "messages[0].role"},
      {true, "{" + kMsgs + R"([{"role": "user", "content": "a"}, {"role": "robot"}]})", 400,
       "messages[1].role"},
      {true, "{" + kMsgs + R"([{"role": "user", "content": 5}]})", 400, "messages[0].content"},
      {true,
       "{" + kMsgs +
           R"([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}]}]})",
       400, "messages[0].content[1].type"},
      {true, "{" + kMsgs + R"([{"role": "user", "content": [{"type": "text", "text": 3}]}]})", 400,
       "messages[0].content[0].text"},
      {true,
       "{" + kMsgs +
           R"([{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]})",
       400, "messages[1].tool_calls[0].function.name"},
      {true, chat_body(R"(, "temperature": "hot")"), 400, "temperature"},
      {true, chat_body(R"(, "temperature": 3.5)"), 400, "temperature"},
      {true, chat_body(R"(, "temperature": -1)"), 400, "temperature"},
      {true, chat_body(R"(, "temperature": true)"), 400, "temperature"},
      {true, chat_body(R"(, "top_p": 0)"), 400, "top_p"},
      {true, chat_body(R"(, "top_p": 1.5)"), 400, "top_p"},
      {true, chat_body(R"(, "max_tokens": 0)"), 400, "max_tokens"},
      {true, chat_body(R"(, "max_tokens": -3)"), 400, "max_tokens"},
      {true, chat_body(R"(, "max_tokens": 1.5)"), 400, "max_tokens"},
      {true, chat_body(R"(, "max_tokens": "10")"), 400, "max_tokens"},
      {true, chat_body(R"(, "max_tokens": 5000)"), 400, "max_tokens"},
      {true, chat_body(R"(, "max_tokens": 10, "max_completion_tokens": 20)"), 400,
       "max_completion_tokens"},
      {true, chat_body(R"(, "n": 0)"), 400, "n"},
      {true, chat_body(R"(, "n": 100)"), 400, "n"},
      {true, chat_body(R"(, "stop": 5)"), 400, "stop"},
      {true, chat_body(R"(, "stop": "")"), 400, "stop"},
      {true, chat_body(R"(, "stop": ["a", ""])"), 400, "stop[1]"},
      {true,
       chat_body(
           R"(, "stop": ["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"])"),
       400, "stop"},
      {true, chat_body(R"(, "stream": "yes")"), 400, "stream"},
      {true, chat_body(R"(, "stream_options": {"include_usage": true})"), 400, "stream_options"},
      {true, chat_body(R"(, "stream": true, "stream_options": {"include_usage": "x"})"), 400,
       "stream_options.include_usage"},
      {true, chat_body(R"(, "stream": true, "stream_options": {"continuous": true})"), 400,
       "stream_options.continuous"},
      {true, chat_body(R"(, "logprobs": "yes")"), 400, "logprobs"},
      {true, chat_body(R"(, "logprobs": true, "top_logprobs": 21)"), 400, "top_logprobs"},
      {true, chat_body(R"(, "top_logprobs": 2)"), 400, "top_logprobs"},
      {true, chat_body(R"(, "logit_bias": {"abc": 1})"), 400, "logit_bias"},
      {true, chat_body(R"(, "logit_bias": {"99999999": 1})"), 400, "logit_bias"},
      {true, chat_body(R"(, "logit_bias": {"5": 500})"), 400, "logit_bias"},
      {true, chat_body(R"(, "logit_bias": [1])"), 400, "logit_bias"},
      {true, chat_body(R"(, "seed": 1.5)"), 400, "seed"},
      {true, chat_body(R"(, "seed": "1")"), 400, "seed"},
      {true, chat_body(R"(, "presence_penalty": 3)"), 400, "presence_penalty"},
      {true, chat_body(R"(, "frequency_penalty": -2.5)"), 400, "frequency_penalty"},
      {true, chat_body(R"(, "top_k": -2)"), 400, "top_k"},
      {true, chat_body(R"(, "min_p": 1.5)"), 400, "min_p"},
      {true, chat_body(R"(, "repetition_penalty": 0)"), 400, "repetition_penalty"},
      {true, chat_body(R"(, "ignore_eos": 1)"), 400, "ignore_eos"},
      {true, chat_body(R"(, "tools": {"type": "function"})"), 400, "tools"},
      {true, chat_body(R"(, "tools": [{"type": "function", "function": {"description": "x"}}])"),
       400, "tools[0].function.name"},
      {true,
       chat_body(R"(, "tools": [{"type": "function", "function": {"name": "get weather!"}}])"), 400,
       "tools[0].function.name"},
      {true, chat_body(R"(, "tools": [{"type": "retrieval"}])"), 400, "tools[0].type"},
      {true,
       chat_body(
           R"(, "tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}])"),
       400, "tools[0].function.parameters"},
      {true, tools_body(R"(, "tool_choice": "sometimes")"), 400, "tool_choice"},
      {true, tools_body(R"(, "tool_choice": {"type": "function", "function": {"name": "nope"}})"),
       400, "tool_choice.function.name"},
      {true, chat_body(R"(, "tool_choice": "auto")"), 400, "tool_choice"},
      {true, chat_body(R"(, "foo": 1)"), 400, "foo"},
      {true, chat_body(R"(, "functions": [])"), 400, "functions"},
      {true, chat_body(R"(, "echo": true)"), 400, "echo"},
      {true, chat_body(R"(, "user": 5)"), 400, "user"},
      {true, chat_body(R"(, "response_format": {"type": "json_object"})"), 400,
       "response_format.type"},
      {true, chat_body(R"(, "chat_template_kwargs": {"thinking": "yes"})"), 400,
       "chat_template_kwargs.thinking"},
      {true, chat_body(R"(, "chat_template_kwargs": {"foo": true})"), 400,
       "chat_template_kwargs.foo"},
      {true,
       chat_body(
           R"(, "chat_template_kwargs": {"thinking": true}, "thinking": {"type": "disabled"})"),
       400, "thinking.type"},
      {true, chat_body(R"(, "thinking": {"type": "on"})"), 400, "thinking.type"},
      {true, chat_body(R"(, "reasoning_effort": "extreme")"), 400, "reasoning_effort"},
      {false, R"({"model": "tiny"})", 400, "prompt"},
      {false, R"({"model": "tiny", "prompt": 5})", 400, "prompt"},
      {false, R"({"model": "tiny", "prompt": ""})", 400, "prompt"},
      {false, R"({"model": "tiny", "prompt": []})", 400, "prompt"},
      {false, R"({"model": "tiny", "prompt": [1, -2]})", 400, "prompt[1]"},
      {false, R"({"model": "tiny", "prompt": [99999]})", 400, "prompt[0]"},
      {false, R"({"model": "tiny", "prompt": [1, 2.5]})", 400, "prompt[1]"},
      {false, R"({"model": "tiny", "prompt": [[1, 2], [3]]})", 400, "prompt"},
      {false, R"({"model": "tiny", "prompt": [[1, 1000]]})", 400, "prompt[0][1]"},
      {false, R"({"model": "tiny", "prompt": ["a", "b"]})", 400, "prompt"},
      {false, R"({"model": "other", "prompt": "a"})", 404, "model"},
      {false, completion_body(R"(, "logprobs": true)"), 400, "logprobs"},
      {false, completion_body(R"(, "logprobs": 6)"), 400, "logprobs"},
      {false, completion_body(R"(, "echo": "yes")"), 400, "echo"},
      {false, completion_body(R"(, "suffix": "end")"), 400, "suffix"},
      {false, completion_body(R"(, "best_of": 3)"), 400, "best_of"},
      {false, completion_body(R"(, "messages": [])"), 400, "messages"},
      {false, completion_body(R"(, "temperature": 2.5)"), 400, "temperature"},
  };
}

ApiError error_of(const Bad& b) {
  if (b.chat) {
    auto r = parse_chat_request(b.body, kModel);
    if (auto* e = std::get_if<ApiError>(&r)) return *e;
  } else {
    auto r = parse_completion_request(b.body, kModel);
    if (auto* e = std::get_if<ApiError>(&r)) return *e;
  }
  ADD_FAILURE() << "accepted: " << b.body;
  return {};
}

TEST(ApiRequest, MalformedBodiesNameTheField) {
  const std::vector<Bad> bad = bad_bodies();
  EXPECT_GE(bad.size(), 35u);
  for (const Bad& b : bad) {
    const ApiError e = error_of(b);
    EXPECT_EQ(e.status, b.status) << b.body << " -> " << e.message;
    EXPECT_EQ(e.param, b.param) << b.body << " -> " << e.message;
    EXPECT_NE(e.message.find(b.param), std::string::npos) << e.message;
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_FALSE(e.message.empty());
  }
}

TEST(ApiRequest, SpecificMessages) {
  EXPECT_EQ(error_of({true, chat_body(R"(, "temperature": 3.5)"), 0, ""}).message,
            "temperature: expected a number in [0, 2], got 3.5");
  EXPECT_EQ(error_of({true, chat_body(R"(, "top_p": 0)"), 0, ""}).message,
            "top_p: expected a number in (0, 1], got 0");
  EXPECT_EQ(error_of({true, chat_body(R"(, "max_tokens": 1.5)"), 0, ""}).message,
            "max_tokens: expected an integer in [1, 4096], got 1.5");
  EXPECT_EQ(error_of({true, chat_body(R"(, "foo": 1)"), 0, ""}).message,
            "unknown field 'foo' (not supported by this server)");
  const ApiError wrong = error_of({true, R"({"model": "x", "messages": []})", 0, ""});
  EXPECT_EQ(wrong.message, "The model 'x' does not exist; this server serves 'tiny'");
  EXPECT_EQ(wrong.code, "model_not_found");
  const ApiError json = error_of({true, "{\"model\": ", 0, ""});
  EXPECT_EQ(json.message.rfind("request body: invalid JSON: ", 0), 0u) << json.message;
  EXPECT_NE(error_of({false, R"({"model": "tiny", "prompt": ["a", "b"]})", 0, ""})
                .message.find("batch of prompts is not supported"),
            std::string::npos);
  EXPECT_NE(
      error_of(
          {true,
           R"({"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
           0, ""})
          .message.find("only \"text\""),
      std::string::npos);
}

ChatRequest chat_ok(const std::string& body) {
  auto r = parse_chat_request(body, kModel);
  if (auto* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << body << " -> " << e->message;
    return {};
  }
  return std::get<ChatRequest>(std::move(r));
}

TEST(ApiRequest, MinimalChat) {
  const ChatRequest r = chat_ok(chat_body(""));
  EXPECT_EQ(r.model, "tiny");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(r.messages[0].content, "hi");
  EXPECT_EQ(r.render.thinking_mode, chat::ThinkingMode::kChat);
  EXPECT_FALSE(r.has_tools);
  EXPECT_EQ(r.tool_choice, ToolChoice::kNone);
  EXPECT_FALSE(r.gen.max_tokens.has_value());
  EXPECT_EQ(r.gen.sampling.temperature, 1.0f);
  EXPECT_FALSE(r.gen.seed_given);
  EXPECT_EQ(r.gen.n, 1);
  EXPECT_EQ(r.gen.top_logprobs, -1);
  EXPECT_FALSE(r.gen.stream);
}

TEST(ApiRequest, FullFeaturedChat) {
  const ChatRequest r = chat_ok(tools_body(R"(,
      "max_completion_tokens": 100, "temperature": 0.7, "top_p": 0.9, "top_k": 40,
      "min_p": 0.05, "repetition_penalty": 1.1, "frequency_penalty": 0.5,
      "presence_penalty": -0.5, "logit_bias": {"5": -100, "17": 2.5}, "seed": -1,
      "stop": ["\n\n", "END"], "n": 3, "stream": true, "stream_options": {"include_usage": true},
      "logprobs": true, "top_logprobs": 5, "ignore_eos": true, "user": "u1",
      "metadata": {"a": "b"}, "store": false, "service_tier": "auto", "parallel_tool_calls": true,
      "response_format": {"type": "text"}, "tool_choice": "required",
      "reasoning_effort": "max")"));
  EXPECT_EQ(r.gen.max_tokens, 100);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.7f);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 0.9f);
  EXPECT_EQ(r.gen.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.gen.sampling.min_p, 0.05f);
  EXPECT_FLOAT_EQ(r.gen.sampling.repetition_penalty, 1.1f);
  EXPECT_FLOAT_EQ(r.gen.sampling.frequency_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.gen.sampling.presence_penalty, -0.5f);
  ASSERT_EQ(r.gen.sampling.logit_bias.size(), 2u);
  EXPECT_EQ(r.gen.sampling.logit_bias[0], (std::pair<int32_t, float>{5, -100.0f}));
  EXPECT_EQ(r.gen.sampling.logit_bias[1], (std::pair<int32_t, float>{17, 2.5f}));
  EXPECT_TRUE(r.gen.seed_given);
  EXPECT_EQ(r.gen.sampling.seed, ~uint64_t(0));
  EXPECT_EQ(r.gen.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_EQ(r.gen.n, 3);
  EXPECT_TRUE(r.gen.stream);
  EXPECT_TRUE(r.gen.include_usage);
  EXPECT_EQ(r.gen.top_logprobs, 5);
  EXPECT_TRUE(r.gen.ignore_eos);
  EXPECT_TRUE(r.has_tools);
  EXPECT_EQ(r.tool_choice, ToolChoice::kRequired);
  EXPECT_EQ(r.render.thinking_mode, chat::ThinkingMode::kThinking);
  EXPECT_EQ(r.render.reasoning_effort, chat::ReasoningEffort::kMax);
  // Tools go on a new system message put first, as chat::messages_from_json does.
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].tools[0]["function"]["name"], "get_weather");
}

TEST(ApiRequest, NullMeansAbsentAndIntegralFloatsAreIntegers) {
  const ChatRequest r = chat_ok(chat_body(
      R"(, "temperature": null, "max_tokens": 10.0, "tools": null, "top_k": -1, "stop": [])"));
  EXPECT_EQ(r.gen.sampling.temperature, 1.0f);
  EXPECT_EQ(r.gen.max_tokens, 10);
  EXPECT_EQ(r.gen.sampling.top_k, 0);
  EXPECT_TRUE(r.gen.stop.empty());
  const ChatRequest s = chat_ok(chat_body(R"(, "stop": "###", "seed": 18446744073709551615)"));
  EXPECT_EQ(s.gen.stop, std::vector<std::string>{"###"});
  EXPECT_EQ(s.gen.sampling.seed, ~uint64_t(0));
}

TEST(ApiRequest, ContentParts) {
  const ChatRequest r = chat_ok(R"({"model": "tiny", "messages": [
      {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "f", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "42"}]}]})");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].content, "Be brief.");
  EXPECT_EQ(r.messages[1].content, "a\n\nb");
  EXPECT_EQ(r.messages[2].tool_calls.size(), 1u);
  EXPECT_EQ(r.messages[3].content, "42");
  EXPECT_EQ(r.messages[3].tool_call_id, "c1");
}

TEST(ApiRequest, ThinkingMechanisms) {
  using chat::ReasoningEffort;
  using chat::ThinkingMode;
  struct T {
    const char* extra;
    ThinkingMode mode;
    ReasoningEffort effort;
  };
  const T cases[] = {
      {"", ThinkingMode::kChat, ReasoningEffort::kNone},
      {R"(, "chat_template_kwargs": {"thinking": true})", ThinkingMode::kThinking,
       ReasoningEffort::kHigh},
      {R"(, "chat_template_kwargs": {"enable_thinking": true})", ThinkingMode::kThinking,
       ReasoningEffort::kHigh},
      {R"(, "chat_template_kwargs": {"thinking": false})", ThinkingMode::kChat,
       ReasoningEffort::kNone},
      {R"(, "thinking": {"type": "enabled"})", ThinkingMode::kThinking, ReasoningEffort::kHigh},
      {R"(, "thinking": {"type": "disabled"})", ThinkingMode::kChat, ReasoningEffort::kNone},
      {R"(, "reasoning_effort": "high")", ThinkingMode::kThinking, ReasoningEffort::kHigh},
      {R"(, "reasoning_effort": "low")", ThinkingMode::kThinking, ReasoningEffort::kHigh},
      {R"(, "reasoning_effort": "medium")", ThinkingMode::kThinking, ReasoningEffort::kHigh},
      {R"(, "reasoning_effort": "max")", ThinkingMode::kThinking, ReasoningEffort::kMax},
      {R"(, "reasoning_effort": "none")", ThinkingMode::kChat, ReasoningEffort::kNone},
      {R"(, "reasoning_effort": "max", "thinking": {"type": "disabled"})", ThinkingMode::kChat,
       ReasoningEffort::kNone},
      {R"(, "reasoning_effort": "none", "thinking": {"type": "enabled"})", ThinkingMode::kThinking,
       ReasoningEffort::kNone},
      {R"(, "chat_template_kwargs": {"thinking": true, "enable_thinking": true}, "thinking": {"type": "enabled"})",
       ThinkingMode::kThinking, ReasoningEffort::kHigh},
  };
  for (const T& t : cases) {
    const ChatRequest r = chat_ok(chat_body(t.extra));
    EXPECT_EQ(r.render.thinking_mode, t.mode) << t.extra;
    EXPECT_EQ(r.render.reasoning_effort, t.effort) << t.extra;
  }
}

TEST(ApiRequest, ToolChoiceVariants) {
  EXPECT_EQ(chat_ok(tools_body("")).tool_choice, ToolChoice::kAuto);
  EXPECT_EQ(chat_ok(tools_body(R"(, "tool_choice": "auto")")).tool_choice, ToolChoice::kAuto);
  EXPECT_EQ(chat_ok(tools_body(R"(, "tool_choice": "none")")).tool_choice, ToolChoice::kNone);
  EXPECT_EQ(chat_ok(tools_body(R"(, "tool_choice": "required")")).tool_choice,
            ToolChoice::kRequired);
  const ChatRequest named = chat_ok(
      tools_body(R"(, "tool_choice": {"type": "function", "function": {"name": "get_weather"}})"));
  EXPECT_EQ(named.tool_choice, ToolChoice::kNamed);
  EXPECT_EQ(named.tool_choice_name, "get_weather");
  const ChatRequest empty = chat_ok(chat_body(R"(, "tools": [])"));
  EXPECT_FALSE(empty.has_tools);
  EXPECT_EQ(empty.tool_choice, ToolChoice::kNone);
  EXPECT_EQ(empty.messages.size(), 1u);
}

TEST(ApiRequest, ForcedToolPrefill) {
  EXPECT_EQ(forced_tool_prefill(chat_ok(tools_body(""))), "");
  EXPECT_EQ(forced_tool_prefill(chat_ok(tools_body(R"(, "tool_choice": "required")"))),
            "\n\n<｜DSML｜tool_calls>\n");
  EXPECT_EQ(forced_tool_prefill(chat_ok(tools_body(
                R"(, "tool_choice": {"type": "function", "function": {"name": "get_weather"}})"))),
            "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n");
  EXPECT_EQ(forced_tool_prefill(chat_ok(
                tools_body(R"(, "tool_choice": "required", "thinking": {"type": "enabled"})"))),
            "</think>\n\n<｜DSML｜tool_calls>\n");
}

CompletionRequest completion_ok(const std::string& body) {
  auto r = parse_completion_request(body, kModel);
  if (auto* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << body << " -> " << e->message;
    return {};
  }
  return std::get<CompletionRequest>(std::move(r));
}

TEST(ApiRequest, Completions) {
  const CompletionRequest text = completion_ok(completion_body(
      R"(, "max_tokens": 8, "echo": true, "logprobs": 3, "stream": true, "suffix": null, "best_of": 1)"));
  EXPECT_EQ(text.prompt_text, "Once");
  EXPECT_TRUE(text.prompt_ids.empty());
  EXPECT_TRUE(text.echo);
  EXPECT_EQ(text.gen.top_logprobs, 3);
  EXPECT_EQ(text.gen.max_tokens, 8);
  const CompletionRequest ids = completion_ok(R"({"model": "tiny", "prompt": [0, 5, 999]})");
  EXPECT_FALSE(ids.prompt_text.has_value());
  EXPECT_EQ(ids.prompt_ids, (std::vector<int32_t>{0, 5, 999}));
  EXPECT_EQ(ids.gen.top_logprobs, -1);
  EXPECT_EQ(completion_ok(R"({"model": "tiny", "prompt": [[7, 8]]})").prompt_ids,
            (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(completion_ok(R"({"model": "tiny", "prompt": ["one"]})").prompt_text, "one");
}

TEST(ApiRequest, ErrorFromStatus) {
  ApiError e = api_error_from_status(invalid_argument("messages[2].role: missing"));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "messages[2].role");
  e = api_error_from_status(invalid_argument("prompt is too long: 5000 tokens"));
  EXPECT_EQ(e.param, "");
  e = api_error_from_status(internal_error("oops: x"));
  EXPECT_EQ(e.status, 500);
  EXPECT_EQ(e.type, "server_error");
}

}  // namespace
}  // namespace frugal::serve
