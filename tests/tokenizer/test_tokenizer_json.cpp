#include "test_tokenizer_json.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace frugal::tokenizer::testing {

std::string byte_symbol_for_test(int b) {
  std::string s;
  utf8_append(kByteToCodePoint[b], &s);
  return s;
}

nlohmann::json make_tokenizer_json(const TestTokenizerSpec& spec) {
  using json = nlohmann::json;
  json vocab = json::object();
  json added = json::array();
  int id = 0;
  for (const auto& [content, special] : spec.added) {
    vocab[content] = id;
    added.push_back({{"id", id},
                     {"content", content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", special}});
    ++id;
  }
  for (int b = 0; b < 256; ++b) vocab[byte_symbol_for_test(b)] = id++;
  json merges = json::array();
  for (const auto& [l, r] : spec.merges) {
    if (!vocab.contains(l + r)) vocab[l + r] = id++;
    if (spec.merges_as_pairs) {
      merges.push_back(json::array({l, r}));
    } else {
      merges.push_back(l + " " + r);
    }
  }
  json steps = json::array();
  for (const std::string& re : spec.regexes) {
    steps.push_back({{"type", "Split"},
                     {"pattern", {{"Regex", re}}},
                     {"behavior", "Isolated"},
                     {"invert", false}});
  }
  steps.push_back({{"type", "ByteLevel"},
                   {"add_prefix_space", false},
                   {"trim_offsets", true},
                   {"use_regex", false}});
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", {{"type", "Sequence"}, {"normalizers", json::array()}}},
          {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", steps}}},
          {"post_processor", nullptr},
          {"decoder",
           {{"type", "ByteLevel"},
            {"add_prefix_space", true},
            {"trim_offsets", true},
            {"use_regex", true}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", merges}}}};
}

}  // namespace frugal::tokenizer::testing
