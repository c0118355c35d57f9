// Tokenizer on small tokenizer.json documents built in the test: merges, added tokens, ill-formed
// UTF-8, both merge notations, the word cache, and errors that name the field.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "test_tokenizer_json.h"
#include "tokenizer/bpe.h"

namespace frugal::tokenizer {
namespace {

using testing::byte_symbol_for_test;
using testing::make_tokenizer_json;
using testing::TestTokenizerSpec;

const std::string kSp = byte_symbol_for_test(' ');  // "Ġ"

TestTokenizerSpec small_spec() {
  TestTokenizerSpec spec;
  spec.added = {
      {"<｜begin▁of▁sentence｜>", true}, {"<｜User｜>", true}, {"<think>", false}, {"<｜U", true}};
  spec.merges = {{"h", "e"}, {"l", "l"},        {"he", "ll"}, {"hell", "o"},      {kSp, "w"},
                 {"o", "r"}, {kSp + "w", "or"}, {"l", "d"},   {kSp + "wor", "ld"}};
  return spec;
}

Tokenizer load(const TestTokenizerSpec& spec) {
  auto tok = Tokenizer::from_json(make_tokenizer_json(spec).dump(), "test.json");
  EXPECT_TRUE(tok.ok()) << tok.status().to_string();
  return std::move(tok).value();
}

std::vector<std::string> token_strings(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.emplace_back(*tok.token_bytes(id));
  return out;
}

TEST(Tokenizer, MergesByRank) {
  const Tokenizer tok = load(small_spec());
  auto ids = tok.encode("hello world");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(token_strings(tok, *ids), (std::vector<std::string>{"hello", " world"}));
  EXPECT_EQ(tok.merge_count(), 9u);
  // Unmerged text falls back to bytes.
  ids = tok.encode("hex");
  EXPECT_EQ(token_strings(tok, *ids), (std::vector<std::string>{"he", "x"}));
}

TEST(Tokenizer, PairFormOfMergesGivesSameIds) {
  TestTokenizerSpec a = small_spec(), b = small_spec();
  b.merges_as_pairs = true;
  const Tokenizer ta = load(a), tb = load(b);
  const std::string text = "hello world, hello hello worldly";
  EXPECT_EQ(*ta.encode(text), *tb.encode(text));
}

TEST(Tokenizer, SpecialTokensOnlyWhenAsked) {
  const Tokenizer tok = load(small_spec());
  const std::string text = "<｜User｜>hello<think>";
  auto plain = tok.encode(text);
  ASSERT_TRUE(plain.ok());
  for (int32_t id : *plain) EXPECT_GE(id, 4) << "added token recognised without allow_special";
  auto with = tok.encode(text, {.allow_special = true});
  ASSERT_TRUE(with.ok());
  // Leftmost-longest: "<｜User｜>" wins over its prefix "<｜U"; <think> (not special) is cut too.
  EXPECT_EQ(token_strings(tok, *with),
            (std::vector<std::string>{"<｜User｜>", "hello", "<think>"}));
  EXPECT_TRUE(tok.is_special(1));
  EXPECT_FALSE(tok.is_special(2));
  EXPECT_EQ(*tok.decode(*with, {.skip_special = true}), "hello<think>");
  EXPECT_EQ(*tok.decode(*with), text);
  // A prefix of an added token followed by other text is plain text.
  with = tok.encode("<｜Us", {.allow_special = true});
  EXPECT_EQ(token_strings(tok, *with).front(), "<｜U");
}

TEST(Tokenizer, IllFormedUtf8RoundTripsByteForByte) {
  const Tokenizer tok = load(small_spec());
  const std::string bytes =
      std::string("he\xFFllo \xC3(\xE2\x82 wor\xF0\x9F\x98 ld\xED\xA0\x80 \xC0\xAF end\xE0", 26);
  auto ids = tok.encode(bytes);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*tok.decode(*ids), bytes);
  // An ill-formed byte is a hard boundary: "he" + 0xFF + "llo" never merges to "hello".
  EXPECT_EQ(token_strings(tok, *ids)[0], "he");
  EXPECT_EQ(token_strings(tok, *ids)[1], "\xFF");
}

TEST(Tokenizer, RoundTripsRandomBytes) {
  const Tokenizer tok = load(small_spec());
  std::mt19937 rng(7);
  for (int iter = 0; iter < 200; ++iter) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = char(rng() % 4 == 0 ? rng() % 256 : "hel o\n\t1w"[rng() % 10]);
    auto ids = tok.encode(s, {.allow_special = iter % 2 == 0});
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*tok.decode(*ids), s);
  }
}

TEST(Tokenizer, CacheDoesNotChangeResults) {
  const Tokenizer tok = load(small_spec());
  const std::string text = "hello hello hello world world hellohello";
  const auto first = *tok.encode(text);
  EXPECT_EQ(*tok.encode(text), first);
}

TEST(Tokenizer, DecodeRejectsUnknownIds) {
  const Tokenizer tok = load(small_spec());
  const std::vector<int32_t> ids = {5, 100000};
  auto r = tok.decode(ids);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("100000"), std::string::npos);
  EXPECT_FALSE(tok.token_bytes(-1).has_value());
}

// The array and heap merge loops must agree, including on ties between equal pairs.
TEST(Bpe, SmallAndHeapAlgorithmsAgree) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 20; ++trial) {
    BpeModel m;
    int32_t byte_ids[256];
    for (int b = 0; b < 256; ++b) byte_ids[b] = b;
    m.set_byte_ids(byte_ids);
    // Random merges over a 4-letter alphabet; symbols are ids, new symbols get fresh ids.
    std::vector<int32_t> symbols = {'a', 'b', 'c', 'd'};
    int32_t next_id = 256;
    for (int k = 0; k < 60; ++k) {
      const int32_t l = symbols[rng() % symbols.size()], r = symbols[rng() % symbols.size()];
      if (m.add_merge(l, r, next_id)) symbols.push_back(next_id++);
    }
    m.finish();
    BpeScratch s1, s2;
    for (int iter = 0; iter < 50; ++iter) {
      std::string text(1 + rng() % 300, 'a');
      for (char& c : text) c = char('a' + rng() % 4);
      std::vector<int32_t> a, b;
      m.encode_small(reinterpret_cast<const uint8_t*>(text.data()), text.size(), &a, &s1);
      m.encode_heap(reinterpret_cast<const uint8_t*>(text.data()), text.size(), &b, &s2);
      ASSERT_EQ(a, b) << text;
    }
  }
}

TEST(Bpe, LeftmostPairWinsTies) {
  BpeModel m;
  int32_t byte_ids[256];
  for (int b = 0; b < 256; ++b) byte_ids[b] = b;
  m.set_byte_ids(byte_ids);
  ASSERT_TRUE(m.add_merge('a', 'a', 300));
  m.finish();
  BpeScratch s;
  for (bool heap : {false, true}) {
    std::vector<int32_t> out;
    const uint8_t text[] = {'a', 'a', 'a'};
    heap ? m.encode_heap(text, 3, &out, &s) : m.encode_small(text, 3, &out, &s);
    EXPECT_EQ(out, (std::vector<int32_t>{300, 'a'}));
  }
}

// --- errors name the field --------------------------------------------------------------------

std::string load_error(const nlohmann::json& j) {
  auto tok = Tokenizer::from_json(j.dump(), "bad.json");
  EXPECT_FALSE(tok.ok());
  return tok.ok() ? "" : tok.status().message();
}

TEST(TokenizerErrors, NameTheField) {
  const nlohmann::json good = make_tokenizer_json(small_spec());
  auto expect_err = [&](auto mutate, const std::string& needle) {
    nlohmann::json j = good;
    mutate(j);
    const std::string msg = load_error(j);
    EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg;
    EXPECT_NE(msg.find("bad.json"), std::string::npos) << "message: " << msg;
  };
  expect_err([](auto& j) { j["model"]["type"] = "WordPiece"; }, "model.type");
  expect_err([](auto& j) { j.erase("model"); }, "model");
  expect_err([](auto& j) { j["model"]["byte_fallback"] = true; }, "model.byte_fallback");
  expect_err([](auto& j) { j["model"]["vocab"] = 3; }, "model.vocab");
  expect_err([](auto& j) { j["model"]["vocab"]["zz"] = -1; }, "model.vocab[\"zz\"]");
  expect_err([](auto& j) { j["model"]["vocab"].erase("!"); }, "byte 0x21");
  expect_err([](auto& j) { j["model"]["merges"][2] = "he"; }, "model.merges[2]");
  expect_err([](auto& j) { j["model"]["merges"][1] = 7; }, "model.merges[1]");
  expect_err([](auto& j) { j["model"]["merges"][0] = "q z"; }, "model.merges[0]: token \"qz\"");
  expect_err([](auto& j) { j["model"]["merges"].push_back("h e"); }, "model.merges[9]");
  expect_err([](auto& j) { j["normalizer"] = {{"type", "NFC"}}; }, "normalizer");
  expect_err([](auto& j) { j["decoder"] = nullptr; }, "decoder.type");
  expect_err([](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; },
             "pre_tokenizer.pretokenizers[0]");
  expect_err(
      [](auto& j) {
        j["pre_tokenizer"]["pretokenizers"][1]["pattern"] = {{"String", "x"}};
      },
      "pre_tokenizer.pretokenizers[1].pattern");
  expect_err([](auto& j) { j["pre_tokenizer"]["pretokenizers"][2]["pattern"]["Regex"] = "(a"; },
             "pre_tokenizer.pretokenizers[2].pattern.Regex");
  expect_err([](auto& j) { j["pre_tokenizer"]["pretokenizers"].erase(3); }, "ByteLevel");
  expect_err([](auto& j) { j["added_tokens"][1]["content"] = ""; }, "added_tokens[1]");
  expect_err([](auto& j) { j["added_tokens"][0]["id"] = 9; }, "added_tokens[0]");
  EXPECT_NE(Tokenizer::from_json("{\"model\": [", "bad.json").status().message().find("JSON"),
            std::string::npos);
}

TEST(TokenizerErrors, MissingFilesAreNamed) {
  auto tok = Tokenizer::load_dir("/nonexistent/model");
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("/nonexistent/model"), std::string::npos);
}

}  // namespace
}  // namespace frugal::tokenizer
