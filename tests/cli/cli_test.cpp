// Drives the real `frugal` binary: tokenize / detokenize round trips against the reference ids,
// render and parse against the official-encoder fixtures, and one clear error line (with a
// non-zero exit code) for every kind of bad argument.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "run_binary.h"

namespace frugal {
namespace {

const std::string kRoot = FRUGAL_SOURCE_DIR;
using cli_test::kBin;

using cli_test::run;
using cli_test::RunResult;
using cli_test::slurp;

const std::string kModel = kRoot + "/models/tiny-v4";
const std::string kTok = kRoot + "/tests/fixtures/tokenizer/";
const std::string kChat = kRoot + "/tests/fixtures/chat/";

std::string trim_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

TEST(Cli, TokenizeMatchesReferenceIdsAndDetokenizeRoundTrips) {
  for (const char* name : {"emoji", "cjk", "combining", "whitespace", "invalid_utf8", "specials"}) {
    const std::string text_file =
        kTok + "texts/" + name + (std::string(name) == "invalid_utf8" ? ".bin" : ".txt");
    for (bool special : {false, true}) {
      std::vector<std::string> args = {"tokenize", "-m", kModel, "-f", text_file};
      if (special) args.push_back("--special");
      const RunResult r = run(args);
      ASSERT_EQ(r.rc, 0) << r.err;
      EXPECT_EQ(trim_newline(r.out),
                trim_newline(slurp(kTok + name + (special ? ".special.ids" : ".ids"))))
          << name;
      // detokenize from a file of ids and from stdin gives back the exact bytes.
      const test::ScopedTempDir tmp("cli-ids");
      const std::string ids_file = tmp.file("ids.txt");
      std::ofstream(ids_file) << r.out;
      RunResult back = run({"detokenize", "-m", kModel, "-f", ids_file});
      ASSERT_EQ(back.rc, 0) << back.err;
      EXPECT_TRUE(back.out == slurp(text_file)) << name;
      back = run({"detokenize", "-m", kModel, "-f", "-"}, r.out);
      EXPECT_TRUE(back.out == slurp(text_file)) << name << " (stdin)";
    }
  }
}

TEST(Cli, PromptAndInlineIdsUseTheDefaultModel) {
  const RunResult r = run({"tokenize", "-p", "To be, or not to be"});
  ASSERT_EQ(r.rc, 0) << r.err;
  ASSERT_FALSE(trim_newline(r.out).empty());
  const RunResult back = run({"detokenize", "--ids", trim_newline(r.out)});
  ASSERT_EQ(back.rc, 0) << back.err;
  EXPECT_EQ(back.out, "To be, or not to be");
}

TEST(Cli, RenderMatchesOfficialFixtures) {
  struct Case {
    const char* input;
    std::vector<std::string> flags;
    const char* expected;
  };
  const Case cases[] = {
      {"basic.json", {}, "basic_chat"},
      {"basic.json", {"--thinking", "--reasoning-effort", "max"}, "basic_thinking_max"},
      {"tools_weather.json", {"--thinking"}, "tools_weather_thinking"},
      {"multi_turn.json", {"--thinking", "--keep-thinking"}, "multi_turn_thinking_keep"},
      {"basic.json", {"--no-bos"}, "basic_no_bos"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"render", "--messages", kChat + "conversations/" + c.input};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    const RunResult r = run(args);
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.out, slurp(kChat + "expected/" + c.expected + ".txt")) << c.expected;
  }
  // --ids: the prompt's ids with special tokens recognised, as `tokenize --special` gives them.
  const RunResult ids = run({"render", "-m", kModel, "--messages",
                             kChat + "conversations/tools_weather.json", "--thinking", "--ids"});
  ASSERT_EQ(ids.rc, 0) << ids.err;
  const RunResult tok = run(
      {"tokenize", "-m", kModel, "--special", "-f", kChat + "expected/tools_weather_thinking.txt"});
  EXPECT_EQ(ids.out, tok.out);
  EXPECT_NE(ids.out.rfind(" 4 5\n"), std::string::npos);  // ends with <｜Assistant｜><think>
}

TEST(Cli, ParseMatchesOfficialFixtures) {
  RunResult r = run({"parse", "--thinking"}, slurp(kChat + "completions/thinking_tool_calls.txt"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, slurp(kChat + "expected/parse_thinking_tool_calls.json"));
  r = run({"parse", "-f", kChat + "completions/chat_answer.txt"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, slurp(kChat + "expected/parse_chat_answer.json"));
}

TEST(Cli, HelpIsUseful) {
  RunResult r = run({"--help"});
  EXPECT_EQ(r.rc, 0);
  for (const char* cmd : {"tokenize", "detokenize", "render", "parse"}) {
    EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd;
  }
  r = run({"render", "--help"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("--reasoning-effort"), std::string::npos);
  EXPECT_NE(r.out.find("--thinking"), std::string::npos);
  r = run({"tokenize", "--help"});
  EXPECT_NE(r.out.find("models/tiny-v4"), std::string::npos);  // the documented default
}

// Every bad argument: non-zero exit, nothing on stdout, exactly one line on stderr that starts
// with "frugal" and contains `needle`.
void expect_one_line_error(const std::vector<std::string>& args, const std::string& needle,
                           const std::string& input = "") {
  const RunResult r = run(args, input);
  std::string cmd;
  for (const std::string& a : args) cmd += a + " ";
  EXPECT_NE(r.rc, 0) << cmd;
  EXPECT_TRUE(r.out.empty()) << cmd << ": stdout: " << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << cmd << ": stderr: " << r.err;
  EXPECT_EQ(r.err.rfind("frugal", 0), 0u) << cmd << ": stderr: " << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << cmd << ": stderr: " << r.err;
}

TEST(Cli, EveryBadArgumentGivesOneClearErrorLine) {
  const std::string msgs = kChat + "conversations/basic.json";
  expect_one_line_error({"tokenize", "-m", "/nonexistent/model", "-p", "hi"},
                        "/nonexistent/model: model directory does not exist");
  expect_one_line_error({"tokenize", "-m", kRoot + "/tests", "-p", "hi"}, "tokenizer.json");
  expect_one_line_error({"tokenize", "--bogus", "-p", "hi"}, "'--bogus'");
  expect_one_line_error({"bogus"}, "'bogus'");
  expect_one_line_error({}, "no command given");
  expect_one_line_error({"tokenize"}, "-f,--file");
  expect_one_line_error({"tokenize", "-p", "a", "-f", msgs}, "Exactly 1 option");
  expect_one_line_error({"tokenize", "-f", "/nonexistent/file.txt"}, "/nonexistent/file.txt");
  expect_one_line_error({"detokenize", "--ids", "12 x7 3"}, "'x7' (token 2) is not a token id");
  expect_one_line_error({"detokenize", "--ids", "-5"}, "'-5'");
  expect_one_line_error({"detokenize", "--ids", "99999999999"}, "not a token id");
  expect_one_line_error({"detokenize", "--ids", "4096"}, "token id 4096");
  expect_one_line_error({"render", "--messages", msgs, "--reasoning-effort", "medium"},
                        "--reasoning-effort");
  expect_one_line_error({"render"}, "--messages");
  expect_one_line_error({"render", "--messages", kRoot + "/CMakeLists.txt"}, "not valid JSON");
  expect_one_line_error({"render", "--messages", "-"}, "messages[0].role",
                        R"([{"content": "no role"}])");
  expect_one_line_error({"render", "--messages", kRoot}, "is a directory");
  expect_one_line_error({"render", "-m", "/nonexistent/model", "--messages", msgs},
                        "/nonexistent/model");
  expect_one_line_error({"parse", "--thinking"}, "</think>", "no end of thinking");
  expect_one_line_error({"parse"}, "missing <｜end▁of▁sentence｜>", "cut short");
}

}  // namespace
}  // namespace frugal
