// Builds small tokenizer.json documents for tests: the 256 byte symbols, a few merges, the
// DeepSeek-V3 pre-tokenizer sequence, and added tokens.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace frugal::tokenizer::testing {

// The DeepSeek-V3 family pre-tokenizer regexes (docs/deepseek-v4.md §4.2).
inline std::vector<std::string> deepseek_v3_split_regexes() {
  return {
      "\\p{N}{1,3}",
      "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
      "[!\"#$%&'()*+,\\-./"
      ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
      " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
  };
}

std::string byte_symbol_for_test(int b);

struct TestTokenizerSpec {
  std::vector<std::pair<std::string, std::string>> merges;  // byte-level symbols
  bool merges_as_pairs = false;
  std::vector<std::pair<std::string, bool>> added;  // content, special
  std::vector<std::string> regexes = deepseek_v3_split_regexes();
};

// Vocabulary: added tokens first (ids 0..), then the 256 byte symbols, then one id per merge.
nlohmann::json make_tokenizer_json(const TestTokenizerSpec& spec);

}  // namespace frugal::tokenizer::testing
