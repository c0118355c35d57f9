// UTF-8 well-formedness per the Unicode Standard, Table 3-7 (no overlongs, no surrogates, nothing
// above U+10FFFF), and the "maximal subpart" rule of §3.9 (U+FFFD substitution) used by the
// streaming decoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace frugal::tokenizer {

enum class Utf8Kind {
  kComplete,    // a well-formed sequence of `len` bytes starts here
  kIncomplete,  // all `len` remaining bytes are a valid prefix of a sequence that needs more bytes
  kInvalid,     // ill-formed: the first `len` bytes are one maximal subpart (replace by one U+FFFD)
};

struct Utf8Scan {
  Utf8Kind kind;
  size_t len;
};

// Classifies the bytes at the start of [p, p + n), n >= 1.
Utf8Scan utf8_scan(const uint8_t* p, size_t n);

// Length of the well-formed sequence at p (1..4), or 0 when none starts there.
inline size_t utf8_valid_len(const uint8_t* p, size_t n) {
  if (p[0] < 0x80) return 1;
  Utf8Scan s = utf8_scan(p, n);
  return s.kind == Utf8Kind::kComplete ? s.len : 0;
}

// Code point of a well-formed sequence of `len` bytes.
uint32_t utf8_decode(const uint8_t* p, size_t len);

// Appends the UTF-8 encoding of a scalar value (cp < 0x110000, not a surrogate).
void utf8_append(uint32_t cp, std::string* out);

// True when the whole string is well-formed UTF-8.
bool utf8_is_valid(std::string_view s);

}  // namespace frugal::tokenizer
