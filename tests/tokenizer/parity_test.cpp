// Parity with the Python reference tokenizer (tools/tokenizer/bpe.py): the shipped
// models/tiny-v4/tokenizer.json must give the reference ids on every text of the Unicode torture
// set and on the whole corpus, with and without special tokens, and decode(encode(x)) == x.
// Fixtures: tests/fixtures/tokenizer/ (tools/tokenizer/make_fixtures.py), including a copy of the
// corpus (shared/data/tinyshakespeare.txt).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace frugal::tokenizer {
namespace {

const std::string kRoot = FRUGAL_SOURCE_DIR;
const std::string kFixtures = kRoot + "/tests/fixtures/tokenizer/";

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

std::vector<int32_t> read_ids(const std::string& path) {
  std::string text;
  EXPECT_TRUE(read_file(path, &text)) << "cannot read " << path;
  std::vector<int32_t> ids;
  std::istringstream ss(text);
  int64_t v;
  while (ss >> v) ids.push_back(int32_t(v));
  return ids;
}

const Tokenizer& shipped() {
  static const Tokenizer* tok = [] {
    auto t = Tokenizer::load_dir(kRoot + "/models/tiny-v4");
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    return new Tokenizer(std::move(t).value());
  }();
  return *tok;
}

size_t first_difference(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

void check(const std::string& name, const std::string& text, bool special,
           const std::vector<int32_t>& want) {
  const Tokenizer& tok = shipped();
  auto got = tok.encode(text, {.allow_special = special});
  ASSERT_TRUE(got.ok()) << name << ": " << got.status().to_string();
  const size_t at = first_difference(*got, want);
  EXPECT_TRUE(*got == want) << name << (special ? " (special)" : "") << ": " << got->size()
                            << " ids vs " << want.size() << " expected; first difference at id "
                            << at;
  auto back = tok.decode(*got);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == text) << name << ": decode(encode(x)) != x";
}

nlohmann::json manifest() {
  std::string text;
  EXPECT_TRUE(read_file(kFixtures + "manifest.json", &text))
      << "missing " << kFixtures << "manifest.json";
  return nlohmann::json::parse(text);
}

TEST(TokenizerParity, TortureSetMatchesReference) {
  const nlohmann::json m = manifest();
  ASSERT_EQ(shipped().vocab_size(), m["vocab_size"].get<int>());
  int cases = 0;
  for (const auto& c : m["cases"]) {
    std::string text;
    const std::string path = kFixtures + c["text"].get<std::string>();
    ASSERT_TRUE(read_file(path, &text)) << "cannot read " << path;
    ASSERT_EQ(text.size(), c["bytes"].get<size_t>()) << path;
    check(c["text"], text, false, read_ids(kFixtures + c["ids"].get<std::string>()));
    check(c["text"], text, true, read_ids(kFixtures + c["special_ids"].get<std::string>()));
    ++cases;
  }
  EXPECT_GE(cases, 16);
}

TEST(TokenizerParity, CorpusMatchesReference) {
  const nlohmann::json m = manifest();
  // A copy of shared/data/tinyshakespeare.txt (public domain), so the test needs nothing outside
  // the repository; the size check below catches a different file.
  const std::string path = kFixtures + "tinyshakespeare.txt";
  std::string text;
  if (!read_file(path, &text)) {
    FAIL() << "corpus not found at " << path;
  }
  ASSERT_EQ(text.size(), m["corpus"]["bytes"].get<size_t>())
      << path << " is not the expected corpus";
  const std::vector<int32_t> want = read_ids(kFixtures + m["corpus"]["ids"].get<std::string>());
  ASSERT_EQ(want.size(), m["corpus"]["tokens"].get<size_t>());
  check("corpus", text, false, want);
}

}  // namespace
}  // namespace frugal::tokenizer
