// OutputParser: every reply, pushed whole, split in two at every byte, and byte by byte, gives
// the same deltas' concatenation and the expected message; nothing emitted is ever taken back.
#include "serve/output_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace frugal::serve {
namespace {

using chat::ThinkingMode;
using Kind = OutputDelta::Kind;

struct Case {
  const char* name;
  ThinkingMode mode;
  bool tools;
  std::string prefill;
  std::string text;
  bool eos;
  chat::ParsedMessage expected;
};

// The concatenation of every delta of one run.
struct Collected {
  std::string reasoning, content;
  std::vector<OutputDelta> calls;
};

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

void collect(const Case& c, const std::vector<OutputDelta>& ds, Collected* out) {
  for (const OutputDelta& d : ds) {
    if (d.kind == Kind::kToolCall) {
      out->calls.push_back(d);
      continue;
    }
    EXPECT_FALSE(d.text.empty()) << c.name;
    EXPECT_TRUE(valid_utf8(d.text)) << c.name << ": delta splits a character: " << d.text;
    (d.kind == Kind::kReasoning ? out->reasoning : out->content) += d.text;
  }
}

Collected run(const Case& c, const std::vector<std::string>& pieces) {
  OutputParser p(c.mode, c.tools, c.prefill, /*id_seed=*/42);
  Collected got;
  for (const std::string& piece : pieces) {
    collect(c, p.push(piece), &got);
    // Never emitted only to be retracted: what went out is a prefix of the final answer.
    EXPECT_TRUE(starts_with(c.expected.reasoning_content, got.reasoning)) << c.name;
    EXPECT_TRUE(starts_with(c.expected.content, got.content)) << c.name;
    EXPECT_TRUE(got.calls.empty()) << c.name;
    EXPECT_EQ(p.message().reasoning_content, got.reasoning) << c.name;
    EXPECT_EQ(p.message().content, got.content) << c.name;
  }
  collect(c, p.finish(c.eos), &got);
  EXPECT_TRUE(p.finished());
  EXPECT_TRUE(p.finish(c.eos).empty());
  // The deltas add up to message(), and message() is the expected reply.
  const chat::ParsedMessage& m = p.message();
  EXPECT_EQ(got.reasoning, m.reasoning_content) << c.name;
  EXPECT_EQ(got.content, m.content) << c.name;
  EXPECT_EQ(m.reasoning_content, c.expected.reasoning_content) << c.name;
  EXPECT_EQ(m.content, c.expected.content) << c.name;
  EXPECT_EQ(p.has_tool_calls(), !c.expected.tool_calls.empty()) << c.name;
  EXPECT_EQ(got.calls.size(), m.tool_calls.size()) << c.name;
  EXPECT_EQ(m.tool_calls.size(), c.expected.tool_calls.size()) << c.name;
  EXPECT_EQ(p.tool_call_ids().size(), m.tool_calls.size()) << c.name;
  for (size_t i = 0; i < got.calls.size() && i < c.expected.tool_calls.size(); ++i) {
    EXPECT_EQ(got.calls[i].tool_index, int32_t(i));
    EXPECT_EQ(got.calls[i].tool_name, c.expected.tool_calls[i].name) << c.name;
    EXPECT_EQ(got.calls[i].arguments, c.expected.tool_calls[i].arguments) << c.name;
    EXPECT_EQ(m.tool_calls[i].arguments, c.expected.tool_calls[i].arguments) << c.name;
    EXPECT_EQ(got.calls[i].tool_id, p.tool_call_ids()[i]);
    EXPECT_EQ(got.calls[i].tool_id.size(), 5u + 24u);
    EXPECT_TRUE(starts_with(got.calls[i].tool_id, "call_"));
  }
  return got;
}

const std::string kDsml = "｜DSML｜";
std::string tag(const std::string& t) { return "<" + kDsml + t; }
std::string end_tag(const std::string& t) { return "</" + kDsml + t + ">"; }

std::string invoke(const std::string& name, const std::string& params) {
  return tag("invoke") + " name=\"" + name + "\">\n" + params + end_tag("invoke");
}
std::string param(const std::string& name, bool is_string, const std::string& value) {
  return tag("parameter") + " name=\"" + name + "\" string=\"" + (is_string ? "true" : "false") +
         "\">" + value + end_tag("parameter") + "\n";
}
std::string block(const std::string& invokes) {
  return "\n\n" + tag("tool_calls") + ">\n" + invokes + "\n" + end_tag("tool_calls");
}

std::vector<Case> cases() {
  const std::string weather = invoke("get_weather", param("city", true, "Paris"));
  const std::string add = invoke("add", param("a", false, "3") + param("b", false, "[1, 2]") +
                                            param("note", true, "x < y \"q\""));
  const std::string malformed =
      "Sure." + block(tag("invoke") + " nam=\"x\">\n" + end_tag("invoke"));
  const std::string cut = "x" + block(weather).substr(0, 40);
  return {
      {"plain",
       ThinkingMode::kChat,
       false,
       "",
       "Hello, wörld! ünïcødé 😀 done.",
       true,
       {"Hello, wörld! ünïcødé 😀 done.", "", {}}},
      {"plain_tools_on",
       ThinkingMode::kChat,
       true,
       "",
       "Hi 😀\n\nBye\n",
       true,
       {"Hi 😀\n\nBye\n", "", {}}},
      {"thinking",
       ThinkingMode::kThinking,
       false,
       "",
       "Let me think < about </ it, <th.</think>The answer is 4.",
       true,
       {"The answer is 4.", "Let me think < about </ it, <th.", {}}},
      {"one_call",
       ThinkingMode::kChat,
       true,
       "",
       "Checking." + block(weather),
       true,
       {"Checking.", "", {{"get_weather", "{\"city\": \"Paris\"}"}}}},
      {"two_calls_thinking",
       ThinkingMode::kThinking,
       true,
       "",
       "I need tools.</think>Sure." + block(weather + "\n" + add),
       true,
       {"Sure.",
        "I need tools.",
        {{"get_weather", "{\"city\": \"Paris\"}"},
         {"add", "{\"a\": 3, \"b\": [1, 2], \"note\": \"x < y \\\"q\\\"\"}"}}}},
      {"call_without_eos",
       ThinkingMode::kChat,
       true,
       "",
       block(weather),
       false,
       {"", "", {{"get_weather", "{\"city\": \"Paris\"}"}}}},
      {"malformed_dsml", ThinkingMode::kChat, true, "", malformed, true, {malformed, "", {}}},
      {"cut_off_block", ThinkingMode::kChat, true, "", cut, false, {cut, "", {}}},
      {"cut_off_think_tail",
       ThinkingMode::kThinking,
       false,
       "",
       "abc </thi",
       false,
       {"", "abc </thi", {}}},
      {"never_closed_thinking",
       ThinkingMode::kThinking,
       true,
       "",
       "just thinking\n\n<",
       true,
       {"", "just thinking\n\n<", {}}},
      {"not_special",
       ThinkingMode::kChat,
       true,
       "",
       "a < b </div>\n\n<p>\n\n<" + kDsml + "tool_x\n\n</think> end\n\n",
       true,
       {"a < b </div>\n\n<p>\n\n<" + kDsml + "tool_x\n\n</think> end\n\n", "", {}}},
      {"tools_off_keeps_dsml",
       ThinkingMode::kChat,
       false,
       "",
       "A" + block(weather),
       true,
       {"A" + block(weather), "", {}}},
      {"prefill_required",
       ThinkingMode::kChat,
       true,
       "\n\n" + tag("tool_calls") + ">\n",
       weather + "\n" + end_tag("tool_calls"),
       true,
       {"", "", {{"get_weather", "{\"city\": \"Paris\"}"}}}},
      {"prefill_without_newlines",
       ThinkingMode::kChat,
       true,
       tag("tool_calls") + ">\n",
       add + "\n" + end_tag("tool_calls"),
       true,
       {"", "", {{"add", "{\"a\": 3, \"b\": [1, 2], \"note\": \"x < y \\\"q\\\"\"}"}}}},
      {"prefill_named",
       ThinkingMode::kChat,
       true,
       "\n\n" + tag("tool_calls") + ">\n" + tag("invoke") + " name=\"get_weather\">\n",
       param("city", true, "Oslo") + end_tag("invoke") + "\n" + end_tag("tool_calls"),
       true,
       {"", "", {{"get_weather", "{\"city\": \"Oslo\"}"}}}},
      {"prefill_closes_thinking",
       ThinkingMode::kThinking,
       true,
       "</think>\n\n" + tag("tool_calls") + ">\n",
       weather + "\n" + end_tag("tool_calls"),
       true,
       {"", "", {{"get_weather", "{\"city\": \"Paris\"}"}}}},
      {"prefill_then_garbage",
       ThinkingMode::kChat,
       true,
       "\n\n" + tag("tool_calls") + ">\n",
       "oops",
       true,
       {"oops", "", {}}},
      {"block_at_answer_start",
       ThinkingMode::kThinking,
       true,
       "",
       "r</think>" + tag("tool_calls") + ">\n" + weather + "\n" + end_tag("tool_calls"),
       true,
       {"", "r", {{"get_weather", "{\"city\": \"Paris\"}"}}}},
      {"answer_starting_with_lt",
       ThinkingMode::kChat,
       true,
       "",
       "<b>bold</b>",
       true,
       {"<b>bold</b>", "", {}}},
  };
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class OutputParserCases : public ::testing::TestWithParam<Case> {};

TEST_P(OutputParserCases, EverySplitGivesTheSameReply) {
  const Case& c = GetParam();
  const Collected whole = run(c, {c.text});
  for (size_t k = 0; k <= c.text.size(); ++k) {
    const Collected two = run(c, {c.text.substr(0, k), c.text.substr(k)});
    EXPECT_EQ(two.reasoning, whole.reasoning) << c.name << " split at " << k;
    EXPECT_EQ(two.content, whole.content) << c.name << " split at " << k;
    ASSERT_EQ(two.calls.size(), whole.calls.size()) << c.name << " split at " << k;
    for (size_t i = 0; i < two.calls.size(); ++i) {
      EXPECT_EQ(two.calls[i].tool_id, whole.calls[i].tool_id);  // same seed, same ids
      EXPECT_EQ(two.calls[i].arguments, whole.calls[i].arguments);
    }
  }
  std::vector<std::string> bytes;
  for (char ch : c.text) bytes.emplace_back(1, ch);
  const Collected one_by_one = run(c, bytes);
  EXPECT_EQ(one_by_one.reasoning, whole.reasoning) << c.name;
  EXPECT_EQ(one_by_one.content, whole.content) << c.name;
  EXPECT_EQ(one_by_one.calls.size(), whole.calls.size()) << c.name;
}

INSTANTIATE_TEST_SUITE_P(All, OutputParserCases, ::testing::ValuesIn(cases()),
                         [](const auto& tp) { return std::string(tp.param.name); });

TEST(OutputParser, HoldsBackOnlyWhatCouldBeAMarker) {
  OutputParser p(ThinkingMode::kThinking, true);
  auto d = p.push("abc</th");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, Kind::kReasoning);
  EXPECT_EQ(d[0].text, "abc");
  d = p.push("ink>Hi\n");
  ASSERT_EQ(d.size(), 1u);  // "\n" may start the tool-call opener
  EXPECT_EQ(d[0].kind, Kind::kContent);
  EXPECT_EQ(d[0].text, "Hi");
  d = p.push("\nmore");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].text, "\n\nmore");
  d = p.push("\xF0\x9F");  // half of an emoji
  EXPECT_TRUE(d.empty());
  d = p.push("\x98\x80");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].text, "😀");
}

TEST(OutputParser, ReasoningAndContentInOnePush) {
  OutputParser p(ThinkingMode::kThinking, false);
  const auto d = p.push("why</think>because");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].kind, Kind::kReasoning);
  EXPECT_EQ(d[0].text, "why");
  EXPECT_EQ(d[1].kind, Kind::kContent);
  EXPECT_EQ(d[1].text, "because");
}

TEST(OutputParser, IdsAreDeterministicPerSeed) {
  uint64_t a = 1, b = 1, c = 2;
  const std::string x = make_id("call_", &a);
  EXPECT_EQ(x, make_id("call_", &b));
  EXPECT_NE(x, make_id("call_", &c));
  EXPECT_NE(x, make_id("call_", &a));  // the state moves on
  for (char ch : x.substr(5)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)));
}

}  // namespace
}  // namespace frugal::serve
