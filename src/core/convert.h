// Exact scalar conversions between f32 and the stored element types (architecture doc §2.A, §3.2).
// These are the definitions every vectorised kernel is tested against.
//
// Encoders round to nearest, ties to even. FP8 e4m3 and FP4 e2m1 encoders saturate finite values
// to the largest magnitude (448, 6), as a cast with clamping does in the reference (§2.A).
#pragma once

#include <cstdint>

namespace frugal {

float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float v);  // RNE; NaN stays NaN (quiet)

float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float v);   // RNE; overflow -> inf; NaN stays NaN

float e4m3_to_f32(uint8_t code);     // e4m3fn: 0x7f / 0xff -> NaN, no infinities
uint8_t f32_to_e4m3(float v);        // RNE, saturating to +-448; NaN -> 0x7f

float e8m0_to_f32(uint8_t code);     // 2^(code - 127); 0xff -> NaN
// Smallest power of two >= v for v > 0, as an e8m0 code, clamped to [0, 254]
// (the power-of-two scale rule of §2.A: 2^ceil(log2(v))).
uint8_t f32_to_e8m0_ceil(float v);

float e2m1_to_f32(uint8_t nibble);   // low 4 bits used: {0, .5, 1, 1.5, 2, 3, 4, 6} with sign bit 3
uint8_t f32_to_e2m1(float v);        // RNE on the e2m1 grid, saturating to +-6; NaN -> 0

// Packed FP4: element 2i is the low nibble of byte i, element 2i+1 the high nibble.
inline uint8_t fp4_get(const uint8_t* packed, uint64_t i) {
  const uint8_t b = packed[i >> 1];
  return (i & 1) ? static_cast<uint8_t>(b >> 4) : static_cast<uint8_t>(b & 0x0f);
}

}  // namespace frugal
