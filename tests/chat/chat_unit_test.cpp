// Python-compatible JSON text, input validation errors, and parser edge cases.
#include <gtest/gtest.h>

#include "chat/encoding.h"
#include "chat/parse.h"
#include "chat/py_json.h"

namespace frugal::chat {
namespace {

TEST(PyJson, FloatReprMatchesPython) {
  // Values printed by Python 3: repr(float(x)).
  EXPECT_EQ(py_float_repr(1.0), "1.0");
  EXPECT_EQ(py_float_repr(0.1), "0.1");
  EXPECT_EQ(py_float_repr(-0.0), "-0.0");
  EXPECT_EQ(py_float_repr(1e16), "1e+16");
  EXPECT_EQ(py_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(py_float_repr(123456789012345680.0), "1.2345678901234568e+17");
  EXPECT_EQ(py_float_repr(0.0001), "0.0001");
  EXPECT_EQ(py_float_repr(0.00001), "1e-05");
  EXPECT_EQ(py_float_repr(1.5e-7), "1.5e-07");
  EXPECT_EQ(py_float_repr(3e20), "3e+20");
  EXPECT_EQ(py_float_repr(2.5e-300), "2.5e-300");
  EXPECT_EQ(py_float_repr(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(py_float_repr(123.456), "123.456");
}

TEST(PyJson, DumpsLikePython) {
  const Json v = Json::parse(R"({"b": [1, 2.5, true, null], "a": "é\"\\\n\u0001\u007f", "c": {}})");
  // json.dumps(..., ensure_ascii=False); keys keep their order.
  EXPECT_EQ(py_json_dumps(v),
            "{\"b\": [1, 2.5, true, null], \"a\": \"é\\\"\\\\\\n\\u0001\x7f\", "
            "\"c\": {}}");
  EXPECT_FALSE(py_truthy(Json::array()));
  EXPECT_FALSE(py_truthy(Json("")));
  EXPECT_TRUE(py_truthy(Json{{"a", 1}}));
}

std::string render_error(const char* doc) {
  auto r = render_json(Json::parse(doc), {});
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(ChatErrors, NameTheField) {
  EXPECT_NE(render_error(R"({"msgs": []})").find("messages"), std::string::npos);
  EXPECT_NE(render_error(R"([{"content": "x"}])").find("messages[0].role"), std::string::npos);
  EXPECT_NE(render_error(R"([{"role": "robot"}])").find("unknown role 'robot'"), std::string::npos);
  EXPECT_NE(render_error(R"([{"role": "user", "content": 5}])").find("messages[0].content"),
            std::string::npos);
  EXPECT_NE(
      render_error(R"([{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}])")
          .find("messages[0].tool_calls[0].function.name"),
      std::string::npos);
  EXPECT_NE(
      render_error(
          R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}])")
          .find("messages[0].tool_calls[0].function.arguments"),
      std::string::npos);
  EXPECT_NE(render_error(R"([{"role": "user", "content": "x", "task": "dance"}])").find("task"),
            std::string::npos);
  EXPECT_NE(render_error(R"([{"role": "developer", "content": ""}])").find("developer"),
            std::string::npos);
  EXPECT_NE(render_error(R"({"messages": [], "tools": [{"name": "f"}]})").find("tools[0]"),
            std::string::npos);
}

TEST(ChatRender, ChatModeClosesThinkingRightAfterAssistant) {
  auto r = render_json(Json::parse(R"([{"role": "user", "content": "hi"}])"), {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜></think>");
  r = render_json(Json::parse(R"([{"role": "user", "content": "hi"}])"),
                  {.thinking_mode = ThinkingMode::kThinking});
  EXPECT_EQ(*r, "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜><think>");
}

TEST(ChatParse, ToolCallWithoutEosAtTheVeryEndIsAccepted) {
  // Like the official parser: the tool-call block may be the last thing (EOS optional there).
  auto r =
      parse_completion("x\n\n<｜DSML｜tool_calls>\n</｜DSML｜tool_calls>", ThinkingMode::kChat);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->content, "x");
  EXPECT_TRUE(r->tool_calls.empty());
}

TEST(ChatParse, ErrorsSayWhat) {
  auto r = parse_completion("no eos", ThinkingMode::kChat);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("missing <｜end▁of▁sentence｜>"), std::string::npos);
  r = parse_completion("no end<｜end▁of▁sentence｜>", ThinkingMode::kThinking);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("</think>"), std::string::npos);
}

}  // namespace
}  // namespace frugal::chat
