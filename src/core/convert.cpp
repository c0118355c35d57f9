#include "core/convert.h"

#include <bit>

namespace frugal {
namespace {

constexpr uint32_t kF32SignMask = 0x80000000u;
constexpr uint32_t kF32AbsMask = 0x7fffffffu;
constexpr uint32_t kF32ExpMask = 0x7f800000u;  // also the bits of +inf
constexpr uint32_t kF32ManMask = 0x007fffffu;
constexpr uint32_t kF32QuietNaN = 0x7fc00000u;

inline uint32_t bits_of(float v) { return std::bit_cast<uint32_t>(v); }
inline float float_of(uint32_t u) { return std::bit_cast<float>(u); }

// m / 2^shift rounded to nearest, ties to even, for m < 2^24 and shift >= 1. Integer-only, so the
// result does not depend on the FPU rounding mode.
uint32_t shift_right_rne(uint32_t m, int shift) {
  if (shift >= 32) return 0;  // m / 2^shift < 2^-8: rounds to 0
  const uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return (rem > half || (rem == half && (q & 1))) ? q + 1 : q;
}

// Code (without sign) of the finite magnitude whose f32 bits are `abs_bits`, in a binary format
// with `man_bits` mantissa bits and exponent bias `bias` (IEEE-style: exponent field 0 holds the
// subnormals). Rounds to nearest even. The caller handles NaN and saturation: the result may lie
// past the format's largest finite code when the magnitude is too large.
//
// A rounding carry out of the mantissa adds one to the exponent field, which is exactly the next
// binade's code, so no special case is needed (same for the largest subnormal rounding up to the
// smallest normal).
uint32_t encode_magnitude(uint32_t abs_bits, int man_bits, int bias) {
  int exp = static_cast<int>(abs_bits >> 23);  // biased f32 exponent
  uint32_t man = abs_bits & kF32ManMask;
  if (exp == 0) {
    exp = 1;  // f32 subnormal: scale of exponent 1, no implicit bit
  } else {
    man |= 0x800000u;
  }
  const int e = exp - 127;    // value = man * 2^(e - 23)
  const int emin = 1 - bias;  // exponent of the target's smallest normal
  if (e < emin) {
    // Target subnormal: count units of 2^(emin - man_bits); value / unit = man * 2^-shift.
    const int shift = 23 - man_bits + emin - e;
    return shift_right_rne(man, shift);
  }
  const uint32_t q = shift_right_rne(man, 23 - man_bits);  // in [2^man_bits, 2^(man_bits + 1)]
  return (static_cast<uint32_t>(e + bias) << man_bits) + q - (1u << man_bits);
}

}  // namespace

// ---- bf16 ----

float bf16_to_f32(uint16_t bits) { return float_of(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_bf16(float v) {
  const uint32_t u = bits_of(v);
  if ((u & kF32AbsMask) > kF32ExpMask) {
    // NaN: truncating could clear every payload bit left and make an infinity; force quiet.
    return static_cast<uint16_t>((u >> 16) | 0x0040u);
  }
  // Adding 0x7fff rounds up past the half-way point; the low bit of the kept half breaks ties to
  // even. A carry into the exponent is correct rounding (up to inf for the largest values).
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

// ---- f16 (IEEE binary16: 5 exponent bits, bias 15, 10 mantissa bits) ----

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0) {
    const float mag = static_cast<float>(man) * 0x1p-24f;  // subnormal: man * 2^-24, exact
    return float_of(sign | bits_of(mag));
  }
  if (exp == 0x1f) return float_of(sign | kF32ExpMask | (man << 13));  // inf, or NaN with payload
  return float_of(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

uint16_t f32_to_f16(float v) {
  const uint32_t u = bits_of(v);
  const uint16_t sign = static_cast<uint16_t>((u & kF32SignMask) >> 16);
  const uint32_t a = u & kF32AbsMask;
  if (a > kF32ExpMask) return static_cast<uint16_t>(sign | 0x7e00u | ((a & kF32ManMask) >> 13));
  // 65520 is half-way between 65504 (largest finite, odd mantissa) and 2^16: it and everything
  // above round to infinity.
  constexpr uint32_t kF16RoundsToInf = 0x477ff000u;  // 65520.0f
  if (a >= kF16RoundsToInf) return static_cast<uint16_t>(sign | 0x7c00u);
  return static_cast<uint16_t>(sign | encode_magnitude(a, 10, 15));
}

// ---- FP8 e4m3fn (4 exponent bits, bias 7, 3 mantissa bits; S.1111.111 is NaN, no inf) ----

float e4m3_to_f32(uint8_t code) {
  const uint32_t sign = static_cast<uint32_t>(code & 0x80u) << 24;
  if ((code & 0x7fu) == 0x7fu) return float_of(sign | kF32QuietNaN);
  const uint32_t exp = (code >> 3) & 0xfu;
  const uint32_t man = code & 0x7u;
  if (exp == 0) {
    const float mag = static_cast<float>(man) * 0x1p-9f;  // subnormal: man * 2^-9, exact
    return float_of(sign | bits_of(mag));
  }
  return float_of(sign | ((exp + 127 - 7) << 23) | (man << 20));
}

uint8_t f32_to_e4m3(float v) {
  const uint32_t u = bits_of(v);
  const uint32_t a = u & kF32AbsMask;
  if (a > kF32ExpMask) return 0x7f;
  const uint8_t sign = static_cast<uint8_t>((u & kF32SignMask) >> 24);
  // 448 = 1.75 * 2^8 is the largest finite code (0x7e). Values in (448, 464] would round to it
  // anyway; beyond, a saturating cast clamps (the reference clamps to +-448 before casting).
  constexpr uint32_t k448 = 0x43e00000u;
  if (a >= k448) return static_cast<uint8_t>(sign | 0x7eu);
  return static_cast<uint8_t>(sign | encode_magnitude(a, 3, 7));
}

// ---- e8m0 scales ----

float e8m0_to_f32(uint8_t code) {
  if (code == 0xff) return float_of(kF32QuietNaN);
  if (code == 0) return float_of(0x00400000u);  // 2^-127: an f32 subnormal
  return float_of(static_cast<uint32_t>(code) << 23);
}

uint8_t f32_to_e8m0_ceil(float v) {
  const uint32_t u = bits_of(v);
  if ((u & kF32AbsMask) > kF32ExpMask) return 0xff;  // NaN
  if ((u & kF32SignMask) != 0 || u == 0) return 0;   // v <= 0 (including -0 and -inf)
  const uint32_t exp = u >> 23;
  const uint32_t man = u & kF32ManMask;
  if (exp == 0xff) return 254;                   // +inf
  if (exp == 0) return man > 0x400000u ? 1 : 0;  // subnormal: 2^-127 has mantissa 0x400000
  const uint32_t code = exp + (man != 0 ? 1u : 0u);
  return static_cast<uint8_t>(code > 254 ? 254 : code);
}

// ---- FP4 e2m1 (2 exponent bits, bias 1, 1 mantissa bit; no inf or NaN) ----

float e2m1_to_f32(uint8_t nibble) {
  static constexpr float kMagnitude[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  const float mag = kMagnitude[nibble & 0x7u];
  return (nibble & 0x8u) ? -mag : mag;
}

uint8_t f32_to_e2m1(float v) {
  const uint32_t u = bits_of(v);
  const uint32_t a = u & kF32AbsMask;
  if (a > kF32ExpMask) return 0;
  const uint8_t sign = static_cast<uint8_t>((u & kF32SignMask) >> 28);
  constexpr uint32_t k6 = 0x40c00000u;  // 6.0f, the largest magnitude (code 7)
  if (a >= k6) return static_cast<uint8_t>(sign | 0x7u);
  return static_cast<uint8_t>(sign | encode_magnitude(a, 1, 1));
}

}  // namespace frugal
