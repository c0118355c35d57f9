// Exact scalar conversions between f32 and the stored element types (architecture doc §2.A, §3.2).
// These are the definitions every vectorised kernel is tested against.
//
// Decoders are exact: every code of every narrow type is representable in f32 (e8m0 code 0,
// 2^-127, is an f32 subnormal).
//
// Encoders round to nearest, ties to even (RNE), on the value itself, not on a double-rounded
// intermediate. Signed encoders keep the sign of zero and of values that round to zero (a value
// in (-2^-10, 0) becomes e4m3 -0), as a hardware cast does. FP8 e4m3 and FP4 e2m1 have no
// infinity: their encoders saturate finite and infinite values to the largest magnitude (448, 6),
// as the clamp-then-cast of the reference does (§2.A).
#pragma once

#include <cstdint>

namespace frugal {

float bf16_to_f32(uint16_t bits);  // exact (bf16 is the top half of an f32)
uint16_t f32_to_bf16(float v);     // RNE; overflow -> inf; NaN stays NaN (made quiet, sign kept)

float f16_to_f32(uint16_t bits);  // exact, subnormals included
uint16_t f32_to_f16(float v);     // RNE incl. subnormals; overflow -> inf; NaN stays NaN (quiet)

float e4m3_to_f32(uint8_t code);  // e4m3fn: 0x7f / 0xff -> NaN, no infinities
uint8_t f32_to_e4m3(float v);     // RNE, saturating to +-448 (inf too); NaN -> 0x7f

float e8m0_to_f32(uint8_t code);  // 2^(code - 127); 0xff -> NaN
// The power-of-two scale rule of §2.A, 2^ceil(log2(v)), as an e8m0 code. For a normal v > 0 it is
// computed from the f32 bits as the reference kernel does: biased exponent + (mantissa != 0), so
// an exact power of two maps to itself. Defined for every input:
//   v > 2^127 (incl. +inf)        -> 254 (2^127, clamped: no larger code exists)
//   normal v in [2^-126, 2^127]   -> the smallest power of two >= v
//   subnormal v in (2^-127, 2^-126) -> 1 (2^-126); subnormal v in (0, 2^-127] -> 0 (2^-127),
//                                    i.e. still the smallest power of two >= v, clamped at 2^-127
//   v <= 0 (incl. -0, -inf)       -> 0 (2^-127): no scale is meaningful; callers floor the block
//                                    maximum first (1e-4 or 6*2^-126 in §2.A), so it never happens
//   NaN                           -> 255 (the e8m0 NaN, so a NaN block maximum stays visible)
uint8_t f32_to_e8m0_ceil(float v);

float e2m1_to_f32(uint8_t nibble);  // low 4 bits used: {0, .5, 1, 1.5, 2, 3, 4, 6} with sign bit 3
uint8_t f32_to_e2m1(float v);       // RNE on the e2m1 grid, saturating to +-6 (inf too); NaN -> 0

// Packed FP4: element 2i is the low nibble of byte i, element 2i+1 the high nibble.
inline uint8_t fp4_get(const uint8_t* packed, uint64_t i) {
  const uint8_t b = packed[i >> 1];
  return (i & 1) ? static_cast<uint8_t>(b >> 4) : static_cast<uint8_t>(b & 0x0f);
}
inline void fp4_set(uint8_t* packed, uint64_t i, uint8_t nibble) {
  uint8_t& b = packed[i >> 1];
  b = (i & 1) ? static_cast<uint8_t>((b & 0x0f) | (nibble << 4))
              : static_cast<uint8_t>((b & 0xf0) | (nibble & 0x0f));
}

}  // namespace frugal
