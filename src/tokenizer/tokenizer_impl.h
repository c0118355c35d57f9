// Internal state of Tokenizer, shared by tokenizer.cpp (encode/decode) and tokenizer_load.cpp.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace frugal::tokenizer {

// Byte trie over added-token contents, for leftmost-longest matching.
class AddedTokenTrie {
 public:
  void insert(std::string_view s, int32_t id);
  // Longest added token starting at text[pos]: its length, or 0; *id receives its id.
  size_t longest_at(std::string_view text, size_t pos, int32_t* id) const;
  bool empty() const { return nodes_.size() <= 1; }
  bool may_start(uint8_t b) const { return first_[b]; }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // byte -> node index
    int32_t id = -1;                                    // token ending here
  };
  std::vector<Node> nodes_{Node{}};
  bool first_[256] = {};
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Tokenizer::Impl {
  // --- immutable after loading ---
  BpeModel bpe;
  std::optional<PreTokenizer> pre;
  int32_t byte_ids[256] = {};
  std::string token_data;              // bytes of every token, concatenated
  std::vector<uint32_t> token_offset;  // [vocab_size + 1]; token i = [offset[i], offset[i+1])
  std::vector<uint8_t> token_kind;     // 0 = unknown id, 1 = model, 2 = added, 3 = added special
  std::vector<AddedToken> added;
  AddedTokenTrie added_trie;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> added_by_content;
  std::optional<int32_t> bos, eos;

  // --- encode scratch and word cache, guarded by mu ---
  static constexpr size_t kCacheMaxEntries = 1 << 17;
  static constexpr size_t kCacheMaxPiece = 256;  // longer pieces are not cached
  mutable std::mutex mu;
  mutable PreTokenizerScratch pre_scratch;
  mutable BpeScratch bpe_scratch;
  mutable std::vector<Piece> pieces;
  mutable std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash,
                             std::equal_to<>>
      cache;  // piece bytes -> [offset, count) in cache_ids
  mutable std::vector<int32_t> cache_ids;

  Status encode_plain(std::string_view text, size_t begin, size_t end,
                      std::vector<int32_t>* out) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>* out) const;
};

// Parses tokenizer.json text into a fresh Impl (tokenizer_load.cpp).
Result<std::unique_ptr<Tokenizer::Impl>> load_tokenizer_impl(std::string_view json_text,
                                                             std::string_view name);

}  // namespace frugal::tokenizer
