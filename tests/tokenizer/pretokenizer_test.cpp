// Pre-tokenizer pieces against the Python reference (tools/tokenizer/bpe.py `pieces`), plus the
// empty-match and lookahead rules of pretokenizer.h.
#include "tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_tokenizer_json.h"

namespace frugal::tokenizer {
namespace {

std::vector<std::string> split(const PreTokenizer& pt, const std::string& text) {
  PreTokenizerScratch scratch;
  std::vector<Piece> pieces;
  Status st = pt.split(text, Piece{0, uint32_t(text.size())}, &pieces, &scratch);
  EXPECT_TRUE(st.ok()) << st.to_string();
  std::vector<std::string> out;
  for (const Piece& p : pieces) out.push_back(text.substr(p.begin, p.end - p.begin));
  return out;
}

PreTokenizer deepseek() {
  auto pt = PreTokenizer::create(testing::deepseek_v3_split_regexes(), {});
  EXPECT_TRUE(pt.ok()) << pt.status().to_string();
  return std::move(pt).value();
}

using Pieces = std::vector<std::string>;

// Expected lists printed by bpe.py's Tokenizer.pieces on the shipped tokenizer.json.
TEST(PreTokenizer, MatchesReferencePieces) {
  const PreTokenizer pt = deepseek();
  EXPECT_EQ(split(pt, "Hello, world! 12345 678"),
            (Pieces{"Hello", ",", " world", "!", " ", "123", "45", " ", "678"}));
  EXPECT_EQ(split(pt, "你好世界abc ひらがなカタカナ"),
            (Pieces{"你好世界", "abc", " ", "ひらがなカタカナ"}));
  EXPECT_EQ(split(pt, "  a   b\n\n  c \t\r\n"),
            (Pieces{" ", " a", "  ", " b", "\n\n", " ", " c", " \t\r\n"}));
  EXPECT_EQ(split(pt, "x1234567y"), (Pieces{"x", "123", "456", "7", "y"}));
  EXPECT_EQ(split(pt, "don't STOP!!!\n\n"), (Pieces{"don", "'t", " STOP", "!!!\n\n"}));
  EXPECT_EQ(split(pt, "\u00e9 caf\u00e9 na\u00efve e\u0301"),
            (Pieces{"\u00e9", " caf\u00e9", " na\u00efve", " e\u0301"}));
  EXPECT_EQ(split(pt, "😀👍🏽 🇯🇵!!"), (Pieces{"😀👍🏽", " 🇯🇵!!"}));
  EXPECT_EQ(split(pt, "$100.50 (a+b)*c"),
            (Pieces{"$", "100", ".", "50", " (", "a", "+b", ")*", "c"}));
  EXPECT_EQ(split(pt, "tabs\t\tend   "), (Pieces{"tabs", "\t", "\tend", "   "}));
  EXPECT_EQ(split(pt, "\u3000全角\u3000space"), (Pieces{"\u3000", "全角", "\u3000space"}));
}

TEST(PreTokenizer, LookaheadSeesEndOfPieceOnly) {
  // "12  " -> digits cut first; the later \s+(?!\S) runs on "  " alone, where the end of the
  // piece satisfies the lookahead, so both spaces stay together.
  const PreTokenizer pt = deepseek();
  EXPECT_EQ(split(pt, "a  12"), (Pieces{"a", "  ", "12"}));
  EXPECT_EQ(split(pt, "a  b"), (Pieces{"a", " ", " b"}));
}

TEST(PreTokenizer, EmptyMatchesAdvanceLikePythonFinditer) {
  // Python: [m.span() for m in regex.finditer("a*|b", "baab")] = (0,0),(0,1),(1,3),(3,3),(3,4),
  // (4,4): empty matches are dropped, the gaps between matches kept.
  auto pt = PreTokenizer::create({"a*|b"}, {"test"});
  ASSERT_TRUE(pt.ok());
  EXPECT_EQ(split(*pt, "baab"), (Pieces{"b", "aa", "b"}));
  auto pt2 = PreTokenizer::create({"x*"}, {"test"});
  ASSERT_TRUE(pt2.ok());
  EXPECT_EQ(split(*pt2, "abxxc"), (Pieces{"a", "b", "xx", "c"}));
}

TEST(PreTokenizer, BadRegexNamesItsSource) {
  auto pt = PreTokenizer::create({"(unclosed"}, {"tok.json: pre_tokenizer.pretokenizers[0]"});
  ASSERT_FALSE(pt.ok());
  EXPECT_NE(pt.status().message().find("pre_tokenizer.pretokenizers[0]"), std::string::npos);
}

TEST(PreTokenizer, RewriteKeepsOtherSyntax) {
  EXPECT_EQ(rewrite_pattern_for_pcre2("a\\d+\\x{41}[\\]x]\\\\"), "a\\d+\\x{41}[\\]x]\\\\");
  EXPECT_EQ(rewrite_pattern_for_pcre2("\\QA\\s\\E"), "\\QA\\s\\E");
  const std::string s = rewrite_pattern_for_pcre2("\\s");
  EXPECT_EQ(s.front(), '[');
  EXPECT_NE(s.find("\\x{3000}"), std::string::npos);
  const std::string in_class = rewrite_pattern_for_pcre2("[^\\r\\n\\p{L}]");
  EXPECT_EQ(in_class.substr(0, 10), "[^\\r\\n\\p{L");
  EXPECT_EQ(in_class.back(), ']');
  EXPECT_EQ(std::count(in_class.begin(), in_class.end(), '['), 1);  // no nested class
}

}  // namespace
}  // namespace frugal::tokenizer
