// GPT-2's byte-level alphabet: every byte maps to one printable code point, so a token's bytes can
// be written as a string in tokenizer.json. Printable Latin-1 bytes ('!'..'~', 0xA1..0xAC,
// 0xAE..0xFF) map to themselves; the other 68 bytes map to U+0100.. in byte order.
#pragma once

#include <array>
#include <cstdint>

namespace frugal::tokenizer {

inline constexpr std::array<uint16_t, 256> kByteToCodePoint = [] {
  std::array<uint16_t, 256> t{};
  uint16_t extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    t[b] = keep ? uint16_t(b) : uint16_t(256 + extra++);
  }
  return t;
}();

// Inverse map for code points below 0x144 (256 + 68); -1 where no byte maps there.
inline constexpr std::array<int16_t, 0x144> kCodePointToByte = [] {
  std::array<int16_t, 0x144> t{};
  for (auto& v : t) v = -1;
  for (int b = 0; b < 256; ++b) t[kByteToCodePoint[b]] = int16_t(b);
  return t;
}();

}  // namespace frugal::tokenizer
