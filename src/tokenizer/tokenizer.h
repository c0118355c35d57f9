// Byte-level BPE tokenizer loaded from a Hugging Face style tokenizer.json (the format DeepSeek
// checkpoints ship). The rules it implements are written down in tools/tokenizer/bpe.py, the
// Python reference it is tested against id for id:
//   1. added tokens are cut out of the text only when EncodeOptions::allow_special is set
//      (leftmost match, the longest at one position);
//   2. the rest is split into maximal runs of well-formed UTF-8; every ill-formed byte is a piece
//      of its own (so any byte string round-trips);
//   3. runs are pre-tokenized by the Split regexes (pretokenizer.h);
//   4. each piece is mapped to byte symbols and merged by rank (bpe.h).
// decode() returns exactly the bytes that were encoded; StreamDecoder (stream_decoder.h) turns a
// token stream into valid UTF-8 text.
//
// Thread safety: a Tokenizer is immutable after loading except for its encode scratch buffers
// and word cache, which a mutex guards: concurrent encode() calls are safe and run one at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace frugal::tokenizer {

struct AddedToken {
  int32_t id;
  std::string content;
  bool special;  // "special": true in tokenizer.json (skipped by decode with skip_special)
};

struct EncodeOptions {
  // Recognise added tokens (<｜User｜>, <think>, ...) written in the text. Off by default, so that
  // user text can never forge a control token.
  bool allow_special = false;
};

struct DecodeOptions {
  bool skip_special = false;  // drop tokens marked "special"
};

class Tokenizer {
 public:
  // Loads tokenizer.json; `source_name` names it in error messages.
  static Result<Tokenizer> from_json(std::string_view json_text, std::string_view source_name);
  static Result<Tokenizer> load_file(const std::string& path);
  // DIR/tokenizer.json, plus bos/eos names from DIR/tokenizer_config.json when that file exists.
  static Result<Tokenizer> load_dir(const std::string& dir);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  Result<std::vector<int32_t>> encode(std::string_view text, EncodeOptions options = {}) const;
  Status encode_append(std::string_view text, EncodeOptions options,
                       std::vector<int32_t>* out) const;

  // Bytes of the ids, concatenated; fails on an id that is not in the vocabulary.
  Result<std::string> decode(std::span<const int32_t> ids, DecodeOptions options = {}) const;
  Status decode_append(std::span<const int32_t> ids, DecodeOptions options, std::string* out) const;

  // Bytes of one token, or nullopt for an unknown id.
  std::optional<std::string_view> token_bytes(int32_t id) const;
  bool is_special(int32_t id) const;
  // One past the largest id (model vocabulary and added tokens).
  int32_t vocab_size() const;
  size_t merge_count() const;
  const std::vector<AddedToken>& added_tokens() const;
  std::optional<int32_t> added_token_id(std::string_view content) const;
  // From tokenizer_config.json (load_dir only).
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  bool regex_jit() const;  // whether PCRE2 JIT is in use

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace frugal::tokenizer
