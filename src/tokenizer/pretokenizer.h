// Pre-tokenizer: a sequence of Split regexes (behavior "Isolated", invert false), run with PCRE2
// (UTF + UCP, JIT when the platform has it).
//
// Semantics follow tools/tokenizer/bpe.py, step 3: each regex is applied to every piece that the
// previous one produced, on that piece alone (a lookahead such as (?!\S) sees the end of the
// piece); the piece is replaced by the gaps between matches and the matches, in order; empty
// strings are dropped. Matching is leftmost, alternatives in order (backtracking), non-overlapping,
// like Python's finditer, including its handling of empty matches.
//
// Unicode tables: the reference uses Python's `regex` module (Unicode 15.0) while PCRE2 10.42 has
// Unicode 14.0, and PCRE2's \s also matches U+180E. rewrite_pattern_for_pcre2() closes both gaps
// (see gen_unicode_delta.py); tests/tokenizer/unicode_classes_test.cpp checks every code point.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace frugal::tokenizer {

// Byte range [begin, end) inside the text being encoded.
struct Piece {
  uint32_t begin;
  uint32_t end;
};

// Rewrites \p{L} \p{N} \p{P} \p{S} \p{M} (outside or inside a character class), \P{..} of those
// (outside a class), \s, and \S (outside a class) so PCRE2 matches the same code points as the
// reference's `regex` module. Everything else is copied unchanged.
std::string rewrite_pattern_for_pcre2(std::string_view pattern);

// Per-thread PCRE2 buffers (match data, JIT stack) and the piece lists being refined.
class PreTokenizerScratch {
 public:
  PreTokenizerScratch();
  ~PreTokenizerScratch();
  PreTokenizerScratch(const PreTokenizerScratch&) = delete;
  PreTokenizerScratch& operator=(const PreTokenizerScratch&) = delete;

 private:
  friend class PreTokenizer;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class PreTokenizer {
 public:
  // `names[i]` says where pattern i came from, for error messages
  // ("pre_tokenizer.pretokenizers[2].pattern.Regex").
  static Result<PreTokenizer> create(const std::vector<std::string>& patterns,
                                     const std::vector<std::string>& names);
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Splits run = text[run.begin, run.end), which must be well-formed UTF-8, and appends the
  // pieces to *out. Fails only when PCRE2 reports an error (e.g. a resource limit).
  Status split(std::string_view text, Piece run, std::vector<Piece>* out,
               PreTokenizerScratch* scratch) const;

  size_t size() const;
  bool jit() const;  // true when every regex was JIT-compiled

 private:
  struct Regex;
  PreTokenizer() = default;
  Status split_one(const Regex& re, std::string_view text, Piece piece, std::vector<Piece>* out,
                   PreTokenizerScratch* scratch) const;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace frugal::tokenizer
