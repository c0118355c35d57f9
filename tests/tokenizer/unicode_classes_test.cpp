// Every code point: the rewritten PCRE2 classes match exactly the sets of Python's `regex` module
// that the reference tokenizer uses (data/unicode_classes.txt, from gen_unicode_delta.py).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <gtest/gtest.h>
#include <pcre2.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"

namespace frugal::tokenizer {
namespace {

std::map<std::string, std::vector<bool>> load_reference() {
  std::map<std::string, std::vector<bool>> sets;
  std::ifstream in(FRUGAL_SOURCE_DIR "/tests/tokenizer/data/unicode_classes.txt");
  EXPECT_TRUE(in.good()) << "missing tests/tokenizer/data/unicode_classes.txt";
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string cls;
    uint32_t a, b;
    ss >> cls >> std::hex >> a >> b;
    auto& v = sets[cls];
    v.resize(0x110000, false);
    for (uint32_t c = a; c <= b; ++c) v[c] = true;
  }
  return sets;
}

TEST(UnicodeClasses, RewrittenPcre2ClassesEqualReferenceSets) {
  const auto ref = load_reference();
  ASSERT_EQ(ref.size(), 6u);
  for (const auto& [cls, want] : ref) {
    const std::string pat = rewrite_pattern_for_pcre2(cls == "s" ? "\\s" : "\\p{" + cls + "}");
    int err;
    PCRE2_SIZE off;
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &err,
                                   &off, nullptr);
    ASSERT_NE(re, nullptr) << pat;
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
    size_t mismatches = 0;
    uint32_t first_bad = 0;
    for (uint32_t c = 0; c < 0x110000; ++c) {
      if (c >= 0xD800 && c < 0xE000) continue;
      std::string s;
      utf8_append(c, &s);
      const bool got =
          pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, md, nullptr) >= 0;
      if (got != want[c] && mismatches++ == 0) first_bad = c;
    }
    EXPECT_EQ(mismatches, 0u) << "class " << cls << ": first mismatch at U+" << std::hex
                              << first_bad;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
  }
}

}  // namespace
}  // namespace frugal::tokenizer
