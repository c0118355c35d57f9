// Turns a stream of token ids into text that is always valid UTF-8, for printing tokens as they
// are generated. A character whose bytes span several tokens is held back until it is complete.
//
// Ill-formed bytes become U+FFFD, one per maximal subpart (Unicode §3.9, the rule Python's
// errors="replace" and the WHATWG decoder follow), and only when that is certain: either a byte
// arrives that cannot continue the held-back prefix ("clearly invalid"), or finish() is called
// with a prefix still pending. So the text a stream produces equals decoding all its bytes at once
// with that rule; for valid UTF-8 it is exactly Tokenizer::decode().
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace frugal::tokenizer {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, DecodeOptions options = {})
      : tok_(&tok), options_(options) {}

  // Appends to *out the text that this token completes. Fails on an unknown id (nothing is
  // appended and the held-back state is unchanged).
  Status push(int32_t id, std::string* out);
  // Appends raw bytes (same rules); used by push() and by tests.
  void push_bytes(std::string_view bytes, std::string* out);
  // Flushes a held-back incomplete character as U+FFFD and resets.
  void finish(std::string* out);
  void reset() { npending_ = 0; }
  size_t pending_bytes() const { return npending_; }

 private:
  const Tokenizer* tok_;
  DecodeOptions options_;
  uint8_t pending_[4] = {};
  size_t npending_ = 0;  // a valid but incomplete prefix, at most 3 bytes
};

}  // namespace frugal::tokenizer
