// StreamDecoder: characters split across tokens are held back; ill-formed bytes become U+FFFD per
// maximal subpart, only when certain; the result equals decoding all bytes at once.
#include "tokenizer/stream_decoder.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "test_tokenizer_json.h"

namespace frugal::tokenizer {
namespace {

const std::string kFFFD = "\xEF\xBF\xBD";

// Whole-buffer decode with the same rule, written independently: Python's
// bytes.decode("utf-8", errors="replace") on these inputs.
std::string stream_all(const std::vector<std::string>& chunks, std::vector<std::string>* steps) {
  auto tok = Tokenizer::from_json(testing::make_tokenizer_json({}).dump(), "t.json");
  EXPECT_TRUE(tok.ok());
  StreamDecoder dec(*tok);
  std::string out;
  for (const std::string& c : chunks) {
    std::string step;
    dec.push_bytes(c, &step);
    if (steps) steps->push_back(step);
    out += step;
  }
  dec.finish(&out);
  return out;
}

TEST(StreamDecoder, HoldsBackSplitCharacters) {
  std::vector<std::string> steps;
  // "é" = C3 A9, "😀" = F0 9F 98 80, split over tokens.
  EXPECT_EQ(stream_all({"a\xC3",
                        "\xA9"
                        "b\xF0\x9F",
                        "\x98", "\x80!"},
                       &steps),
            "aéb😀!");
  EXPECT_EQ(steps, (std::vector<std::string>{"a", "éb", "", "😀!"}));
}

TEST(StreamDecoder, ReplacesIllFormedBytesWhenCertain) {
  std::vector<std::string> steps;
  // F0 9F then 'x': the prefix cannot complete, so it becomes one U+FFFD right away.
  EXPECT_EQ(stream_all({"\xF0\x9F", "x"}, &steps), kFFFD + "x");
  EXPECT_EQ(steps, (std::vector<std::string>{"", kFFFD + "x"}));
  // Python: b"\xff\xc0\xaf\xed\xa0\x80\xe2\x82".decode("utf-8", "replace") has 7 U+FFFD:
  // FF, C0, AF, ED, A0, 80 each alone, and E2 82 (incomplete at the end) once.
  std::string expect;
  for (int i = 0; i < 7; ++i) expect += kFFFD;
  EXPECT_EQ(stream_all({"\xFF\xC0", "\xAF\xED\xA0", "\x80\xE2\x82"}, nullptr), expect);
}

TEST(StreamDecoder, EverySplitGivesTheSameText) {
  const std::string text = "x\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD\xFF y\xC3";
  const std::string whole = stream_all({text}, nullptr);
  std::mt19937 rng(3);
  for (int iter = 0; iter < 300; ++iter) {
    std::vector<std::string> chunks;
    size_t i = 0;
    while (i < text.size()) {
      const size_t n = 1 + rng() % 4;
      chunks.push_back(text.substr(i, n));
      i += n;
    }
    ASSERT_EQ(stream_all(chunks, nullptr), whole);
  }
  EXPECT_EQ(whole, "x你好 👍🏽" + kFFFD + " y" + kFFFD);
}

TEST(StreamDecoder, PushByIdAndUnknownId) {
  auto tok = Tokenizer::from_json(testing::make_tokenizer_json({}).dump(), "t.json");
  ASSERT_TRUE(tok.ok());
  auto ids = tok->encode("né");
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 3u);  // no merges: n, C3, A9
  StreamDecoder dec(*tok);
  std::string out;
  for (int32_t id : *ids) ASSERT_TRUE(dec.push(id, &out).ok());
  EXPECT_EQ(out, "né");
  EXPECT_FALSE(dec.push(99999, &out).ok());
}

}  // namespace
}  // namespace frugal::tokenizer
