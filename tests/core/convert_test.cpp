// Conversions against independently computed expectations: every code of every narrow type from
// its bit-field formula (evaluated in double with ldexp), literal spot values, brute-force nearest
// search for rounding, and the compiler's own _Float16 for f16.
#include "core/convert.h"

#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <utility>
#include <vector>

namespace frugal {
namespace {

uint32_t bits(float v) { return std::bit_cast<uint32_t>(v); }

// Same float including the sign of zero; any NaN matches any NaN.
void expect_same(float got, double want, int code) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << "code " << code;
    return;
  }
  EXPECT_EQ(bits(got), bits(static_cast<float>(want)))
      << "code " << code << ": " << got << " vs " << want;
}

// Nearest grid point by exhaustive search; ties to the even code; beyond the largest, saturate.
// `grid` holds (value, code) for the non-negative finite codes in increasing order.
int nearest_code(const std::vector<std::pair<double, int>>& grid, double x) {
  const double a = std::fabs(x);
  if (a >= grid.back().first) return grid.back().second;
  int best = 0;
  for (size_t i = 1; i < grid.size(); ++i) {
    const double d = std::fabs(grid[i].first - a);
    const double db = std::fabs(grid[best].first - a);
    if (d < db || (d == db && grid[i].second % 2 == 0)) best = static_cast<int>(i);
  }
  return grid[best].second;
}

// ---- FP8 e4m3fn ----

double e4m3_expected(int c) {
  const double s = (c & 0x80) ? -1.0 : 1.0;
  const int e = (c >> 3) & 0xf, m = c & 7;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  if (e == 0) return s * std::ldexp(m / 8.0, -6);
  return s * std::ldexp(1.0 + m / 8.0, e - 7);
}

std::vector<std::pair<double, int>> e4m3_grid() {
  std::vector<std::pair<double, int>> g;
  for (int c = 0; c < 0x7f; ++c) g.push_back({e4m3_expected(c), c});
  return g;
}

TEST(ConvertE4M3, AllCodesDecode) {
  for (int c = 0; c < 256; ++c)
    expect_same(e4m3_to_f32(static_cast<uint8_t>(c)), e4m3_expected(c), c);
  EXPECT_EQ(e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0xfe), -448.0f);
  EXPECT_EQ(e4m3_to_f32(0x08), 0.015625f);     // 2^-6, smallest normal
  EXPECT_EQ(e4m3_to_f32(0x01), 0.001953125f);  // 2^-9, smallest subnormal
  EXPECT_EQ(e4m3_to_f32(0x07), 0.013671875f);  // 7 * 2^-9, largest subnormal
  EXPECT_EQ(e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(e4m3_to_f32(0x39), 1.125f);
  EXPECT_EQ(e4m3_to_f32(0x77), 240.0f);  // 1.875 * 2^7
  EXPECT_EQ(bits(e4m3_to_f32(0x00)), 0x00000000u);
  EXPECT_EQ(bits(e4m3_to_f32(0x80)), 0x80000000u);  // -0
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7f)));
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0xff)));
}

TEST(ConvertE4M3, RoundTripEveryCode) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    EXPECT_EQ(f32_to_e4m3(e4m3_to_f32(static_cast<uint8_t>(c))), c) << "code " << c;
  }
}

TEST(ConvertE4M3, MidpointsGoToEvenCode) {
  for (int c = 0; c < 0x7e; ++c) {
    const double lo = e4m3_expected(c), hi = e4m3_expected(c + 1);
    const float mid = static_cast<float>((lo + hi) / 2);  // 5 significant bits: exact in f32
    ASSERT_EQ(static_cast<double>(mid), (lo + hi) / 2);
    const int even = (c % 2 == 0) ? c : c + 1;
    EXPECT_EQ(f32_to_e4m3(mid), even) << "between codes " << c << " and " << c + 1;
    EXPECT_EQ(f32_to_e4m3(-mid), 0x80 | even);
    // One f32 ulp either side decides by distance, not parity.
    EXPECT_EQ(f32_to_e4m3(std::nextafter(mid, 0.0f)), c);
    EXPECT_EQ(f32_to_e4m3(std::nextafter(mid, 1e9f)), c + 1);
  }
}

TEST(ConvertE4M3, SaturatesAndSpecials) {
  for (float v : {448.0f, 449.0f, 464.0f, 465.0f, 480.0f, 1e6f, 3.4e38f,
                  std::numeric_limits<float>::infinity()}) {
    EXPECT_EQ(f32_to_e4m3(v), 0x7e) << v;
    EXPECT_EQ(f32_to_e4m3(-v), 0xfe) << v;
  }
  EXPECT_EQ(f32_to_e4m3(std::numeric_limits<float>::quiet_NaN()), 0x7f);
  EXPECT_EQ(f32_to_e4m3(-std::numeric_limits<float>::quiet_NaN()), 0x7f);
  EXPECT_EQ(f32_to_e4m3(0.0f), 0x00);
  EXPECT_EQ(f32_to_e4m3(-0.0f), 0x80);
  // |x| <= 2^-10 (half the smallest subnormal) rounds to zero, keeping the sign.
  EXPECT_EQ(f32_to_e4m3(0x1p-10f), 0x00);
  EXPECT_EQ(f32_to_e4m3(-0x1p-10f), 0x80);
  EXPECT_EQ(f32_to_e4m3(std::nextafter(0x1p-10f, 1.0f)), 0x01);
  EXPECT_EQ(f32_to_e4m3(1e-30f), 0x00);
  EXPECT_EQ(f32_to_e4m3(std::numeric_limits<float>::denorm_min()), 0x00);
  EXPECT_EQ(f32_to_e4m3(0x1.ep-7f), 0x08);  // largest subnormal 7*2^-9 < x=15*2^-10 (tie) -> 2^-6
}

TEST(ConvertE4M3, MatchesBruteForceNearest) {
  const auto grid = e4m3_grid();
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> exp_dist(-14.0f, 10.0f);
  for (int i = 0; i < 200000; ++i) {
    const float v = std::exp2(exp_dist(rng)) * ((rng() & 1) ? -1.0f : 1.0f);
    const int want = nearest_code(grid, v) | (v < 0 ? 0x80 : 0);
    ASSERT_EQ(f32_to_e4m3(v), want) << v;
  }
}

// ---- e8m0 ----

TEST(ConvertE8M0, AllCodesDecode) {
  for (int c = 0; c < 255; ++c)
    expect_same(e8m0_to_f32(static_cast<uint8_t>(c)), std::ldexp(1.0, c - 127), c);
  EXPECT_TRUE(std::isnan(e8m0_to_f32(255)));
  EXPECT_EQ(e8m0_to_f32(127), 1.0f);
  EXPECT_EQ(e8m0_to_f32(128), 2.0f);
  EXPECT_EQ(e8m0_to_f32(120), 0.0078125f);
  EXPECT_EQ(bits(e8m0_to_f32(0)), 0x00400000u);  // 2^-127, an f32 subnormal
  EXPECT_EQ(bits(e8m0_to_f32(254)), 0x7f000000u);
}

TEST(ConvertE8M0, CeilOfPowersAndNeighbours) {
  for (int c = 0; c < 255; ++c) {
    const float p = e8m0_to_f32(static_cast<uint8_t>(c));
    EXPECT_EQ(f32_to_e8m0_ceil(p), c) << "exact power 2^" << c - 127;
    EXPECT_EQ(f32_to_e8m0_ceil(std::nextafter(p, 0.0f)), c) << "just below 2^" << c - 127;
    if (c < 254) {
      EXPECT_EQ(f32_to_e8m0_ceil(std::nextafter(p, INFINITY)), c + 1);
    }
  }
}

TEST(ConvertE8M0, CeilMatchesLog2) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<double> exp_dist(-125.5, 126.5);
  for (int i = 0; i < 100000; ++i) {
    const float v = static_cast<float>(std::exp2(exp_dist(rng)));
    const int want = static_cast<int>(std::ceil(std::log2(static_cast<double>(v)))) + 127;
    ASSERT_EQ(f32_to_e8m0_ceil(v), want) << v;
  }
  // The §2.A scale of a block whose max is a: 2^ceil(log2(a / 448)).
  EXPECT_EQ(f32_to_e8m0_ceil(448.0f * (1.0f / 448.0f)), 127);
  EXPECT_EQ(f32_to_e8m0_ceil(449.0f * (1.0f / 448.0f)), 128);
  EXPECT_EQ(f32_to_e8m0_ceil(1e-4f * (1.0f / 448.0f)), 127 - 22);  // the amax floor: 2^-22
}

TEST(ConvertE8M0, CeilEdgeCases) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_e8m0_ceil(0.0f), 0);
  EXPECT_EQ(f32_to_e8m0_ceil(-0.0f), 0);
  EXPECT_EQ(f32_to_e8m0_ceil(-1.0f), 0);
  EXPECT_EQ(f32_to_e8m0_ceil(-inf), 0);
  EXPECT_EQ(f32_to_e8m0_ceil(inf), 254);
  EXPECT_EQ(f32_to_e8m0_ceil(std::numeric_limits<float>::max()), 254);
  EXPECT_EQ(f32_to_e8m0_ceil(std::numeric_limits<float>::quiet_NaN()), 255);
  EXPECT_EQ(f32_to_e8m0_ceil(std::numeric_limits<float>::denorm_min()), 0);
  EXPECT_EQ(f32_to_e8m0_ceil(0x1p-127f), 0);
  EXPECT_EQ(f32_to_e8m0_ceil(std::nextafter(0x1p-127f, 1.0f)), 1);
  EXPECT_EQ(f32_to_e8m0_ceil(std::nextafter(0x1p-126f, 0.0f)), 1);  // largest subnormal
  EXPECT_EQ(f32_to_e8m0_ceil(0x1p-126f), 1);
}

// ---- FP4 e2m1 ----

double e2m1_expected(int c) {
  const double s = (c & 0x8) ? -1.0 : 1.0;
  const int e = (c >> 1) & 3, m = c & 1;
  if (e == 0) return s * m * 0.5;  // subnormal: m * 2^(1 - bias - 1)
  return s * std::ldexp(1.0 + m / 2.0, e - 1);
}

TEST(ConvertE2M1, AllCodesDecode) {
  const float literal[16] = {0, .5, 1, 1.5, 2, 3, 4, 6, -0.0f, -.5, -1, -1.5, -2, -3, -4, -6};
  for (int c = 0; c < 16; ++c) {
    expect_same(e2m1_to_f32(static_cast<uint8_t>(c)), e2m1_expected(c), c);
    EXPECT_EQ(bits(e2m1_to_f32(static_cast<uint8_t>(c))), bits(literal[c])) << c;
    EXPECT_EQ(f32_to_e2m1(e2m1_to_f32(static_cast<uint8_t>(c))), c) << "round trip " << c;
  }
  EXPECT_EQ(e2m1_to_f32(0xf7), 6.0f);  // only the low nibble is read
}

TEST(ConvertE2M1, TiesToEvenCode) {
  const std::pair<float, int> ties[] = {{0.25f, 0}, {0.75f, 2}, {1.25f, 2}, {1.75f, 4},
                                        {2.5f, 4},  {3.5f, 6},  {5.0f, 6}};
  for (auto [v, code] : ties) {
    EXPECT_EQ(f32_to_e2m1(v), code) << v;
    EXPECT_EQ(f32_to_e2m1(-v), 0x8 | code) << -v;
    constexpr std::array<float, 8> kValue = {0, .5, 1, 1.5, 2, 3, 4, 6};
    EXPECT_EQ(e2m1_to_f32(f32_to_e2m1(v)), kValue[code]);
  }
  EXPECT_EQ(f32_to_e2m1(std::nextafter(0.25f, 1.0f)), 1);
  EXPECT_EQ(f32_to_e2m1(std::nextafter(5.0f, 9.0f)), 7);
  EXPECT_EQ(f32_to_e2m1(std::nextafter(5.0f, 0.0f)), 6);
}

TEST(ConvertE2M1, SaturatesAndSpecials) {
  for (float v : {6.0f, 6.5f, 7.0f, 100.0f, std::numeric_limits<float>::infinity()}) {
    EXPECT_EQ(f32_to_e2m1(v), 0x7) << v;
    EXPECT_EQ(f32_to_e2m1(-v), 0xf) << v;
  }
  EXPECT_EQ(f32_to_e2m1(std::numeric_limits<float>::quiet_NaN()), 0);
  EXPECT_EQ(f32_to_e2m1(-0.0f), 0x8);
  EXPECT_EQ(f32_to_e2m1(-0.1f), 0x8);
  EXPECT_EQ(f32_to_e2m1(1e-40f), 0);
}

TEST(ConvertE2M1, MatchesBruteForceNearest) {
  std::vector<std::pair<double, int>> grid;
  for (int c = 0; c < 8; ++c) grid.push_back({e2m1_expected(c), c});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-7.0f, 7.0f);
  for (int i = 0; i < 100000; ++i) {
    const float v = dist(rng);
    ASSERT_EQ(f32_to_e2m1(v), nearest_code(grid, v) | (std::signbit(v) ? 0x8 : 0)) << v;
  }
}

TEST(ConvertFP4, PackedLowNibbleFirst) {
  uint8_t packed[2] = {0, 0};
  fp4_set(packed, 0, 0x3);
  fp4_set(packed, 1, 0xc);
  fp4_set(packed, 2, 0x7);
  EXPECT_EQ(packed[0], 0xc3);
  EXPECT_EQ(packed[1], 0x07);
  EXPECT_EQ(fp4_get(packed, 0), 0x3);
  EXPECT_EQ(fp4_get(packed, 1), 0xc);
  EXPECT_EQ(fp4_get(packed, 2), 0x7);
  EXPECT_EQ(fp4_get(packed, 3), 0x0);
  fp4_set(packed, 0, 0xf5);  // only the low 4 bits of the value are stored
  EXPECT_EQ(packed[0], 0xc5);
}

}  // namespace
}  // namespace frugal
