// bf16 and f16 conversions: every 16-bit code round-trips, decoding matches the bit-field
// formula, and f32 -> 16-bit rounding matches an independent reference (a two-candidate nearest
// search for bf16; the compiler's _Float16 conversion for f16).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "core/convert.h"

namespace frugal {
namespace {

uint32_t bits(float v) { return std::bit_cast<uint32_t>(v); }
float from_bits(uint32_t u) { return std::bit_cast<float>(u); }

// ---- bf16 ----

// Nearest bf16 of a finite f32 by comparing the two candidates around it in double; ties to the
// candidate with an even low bit.
uint16_t bf16_reference(float v) {
  const uint32_t u = bits(v);
  const uint16_t down = static_cast<uint16_t>(u >> 16);
  if ((u & 0xffff) == 0) return down;
  const uint16_t up = static_cast<uint16_t>(down + 1);  // next magnitude (may be inf)
  const double x = std::fabs(static_cast<double>(v));
  const double d_down = x - std::fabs(static_cast<double>(from_bits(uint32_t{down} << 16)));
  const double d_up = std::fabs(static_cast<double>(from_bits(uint32_t{up} << 16))) - x;
  if ((up & 0x7fff) == 0x7f80) {  // rounding up would overflow: inf when past the half-way point
    return (u & 0xffff) >= 0x8000 ? up : down;
  }
  if (d_down < d_up) return down;
  if (d_up < d_down) return up;
  return (down & 1) ? up : down;
}

TEST(ConvertBF16, EveryCodeRoundTrips) {
  for (uint32_t c = 0; c < 65536; ++c) {
    const float f = bf16_to_f32(static_cast<uint16_t>(c));
    ASSERT_EQ(bits(f), c << 16);
    const uint16_t back = f32_to_bf16(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(back))) << "code " << c;
      EXPECT_EQ(back & 0x8000, c & 0x8000);  // sign kept
    } else {
      EXPECT_EQ(back, c) << "code " << c;
    }
  }
}

TEST(ConvertBF16, CraftedTies) {
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808000)), 0x3f80);  // tie, 0x3f80 even: down
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f818000)), 0x3f82);  // tie, 0x3f81 odd: up
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808001)), 0x3f81);  // above the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f807fff)), 0x3f80);  // below the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0xbf818000)), 0xbf82);  // negative tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x3fff8000)), 0x4000);  // carry into the exponent
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008000)), 0x0000);  // subnormal tie to even zero
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000)), 0x0002);  // subnormal tie up
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7f8000)), 0x7f80);  // largest tie overflows to inf
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7f7fff)), 0x7f7f);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  // A NaN whose payload is only in the low half must not truncate to inf.
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(from_bits(0x7f800001)))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(from_bits(0xff800001)))));
  EXPECT_EQ(f32_to_bf16(from_bits(0x7fc00000)), 0x7fc0);
}

TEST(ConvertBF16, MatchesReferenceOnRandomBits) {
  std::mt19937 rng(4);
  for (int i = 0; i < 1000000; ++i) {
    const uint32_t u = static_cast<uint32_t>(rng());
    const float v = from_bits(u);
    if (std::isnan(v)) continue;
    ASSERT_EQ(f32_to_bf16(v), bf16_reference(v)) << std::hex << u;
  }
}

// ---- f16 ----

double f16_expected(uint32_t c) {
  const double s = (c & 0x8000) ? -1.0 : 1.0;
  const int e = (c >> 10) & 0x1f;
  const int m = c & 0x3ff;
  if (e == 31) return m == 0 ? s * INFINITY : NAN;
  if (e == 0) return s * std::ldexp(m, -24);
  return s * std::ldexp(1.0 + m / 1024.0, e - 15);
}

TEST(ConvertF16, EveryCodeDecodesAndRoundTrips) {
  for (uint32_t c = 0; c < 65536; ++c) {
    const float f = f16_to_f32(static_cast<uint16_t>(c));
    const double want = f16_expected(c);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << "code " << c;
      const uint16_t back = f32_to_f16(f);
      EXPECT_TRUE(std::isnan(f16_to_f32(back))) << "code " << c;
      EXPECT_EQ(back & 0x8000, c & 0x8000);
      continue;
    }
    ASSERT_EQ(bits(f), bits(static_cast<float>(want))) << "code " << c;
    EXPECT_EQ(f32_to_f16(f), c) << "code " << c;
  }
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), 0x1p-24f);
  EXPECT_EQ(f16_to_f32(0x0400), 0x1p-14f);
}

TEST(ConvertF16, RoundingEdges) {
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7bff);  // below the half-way point to 2^16
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);    // tie with an odd mantissa: up, to inf
  EXPECT_EQ(f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-1e10f), 0xfc00);
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);  // half the smallest subnormal: tie to even 0
  EXPECT_EQ(f32_to_f16(-0x1p-25f), 0x8000);
  EXPECT_EQ(f32_to_f16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_f16(0x1.8p-24f), 0x0002);       // 1.5 units: tie to even 2
  EXPECT_EQ(f32_to_f16(0x1.ff8p-15f), 0x03ff);     // largest subnormal
  EXPECT_EQ(f32_to_f16(0x1.ffcp-15f), 0x0400);     // it + half a unit: tie, up to the even normal
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);  // tie, even: down
  EXPECT_EQ(f32_to_f16(1.0f + 0x3p-11f), 0x3c02);  // tie, odd: up
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(from_bits(0x7f800001)))));
}

// The compiler's IEEE half type: on aarch64 __fp16 (GCC 12 has no _Float16 in C++ there; the
// conversion is the FCVT instruction), elsewhere _Float16 where the compiler has it.
#if defined(__aarch64__)
#define FRUGAL_COMPILER_HALF __fp16
#elif defined(__FLT16_MAX__)
#define FRUGAL_COMPILER_HALF _Float16
#endif

#ifdef FRUGAL_COMPILER_HALF
// The compiler's float -> half conversion (libgcc soft-fp, F16C or FCVT) is an independent RNE
// implementation. Checks every f16 value, the midpoints between neighbours and one f32 ulp either
// side of them, and random f32 bit patterns.
TEST(ConvertF16, MatchesCompilerFloat16) {
  auto check = [](float v) {
    const FRUGAL_COMPILER_HALF h = static_cast<FRUGAL_COMPILER_HALF>(v);
    ASSERT_EQ(f32_to_f16(v), std::bit_cast<uint16_t>(h)) << std::hexfloat << v;
  };
  for (uint32_t c = 0; c < 0x7c00; ++c) {
    const float lo = f16_to_f32(static_cast<uint16_t>(c));
    const float hi = f16_to_f32(static_cast<uint16_t>(c + 1));     // 0x7c00 is inf
    const float mid = c + 1 == 0x7c00 ? 65520.0f : (lo + hi) / 2;  // exact: 12 significant bits
    for (float v : {lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
      check(v);
      check(-v);
    }
  }
  std::mt19937 rng(5);
  for (int i = 0; i < 1000000; ++i) {
    const float v = from_bits(static_cast<uint32_t>(rng()));
    if (!std::isnan(v)) check(v);
  }
}
#endif

}  // namespace
}  // namespace frugal
