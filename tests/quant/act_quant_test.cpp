// Hand-computed cases for the §2.A activation simulations (architecture doc): block maxima, the
// power-of-two scale rule, ties to even, the amax floors, e4m3 subnormals and saturation.
#include "quant/act_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/convert.h"

namespace frugal::quant {
namespace {

std::vector<float> block_with(int64_t n, std::initializer_list<float> head) {
  std::vector<float> v(static_cast<size_t>(n), 0.0f);
  size_t i = 0;
  for (float h : head) v[i++] = h;
  return v;
}

TEST(Fp8Scale, PowerOfTwoRule) {
  // 448 * 2^k maps to exactly 2^k (ceil of an exact power of two is itself).
  EXPECT_EQ(fp8_scale_code(448.0f), 127);
  EXPECT_EQ(fp8_scale_code(56.0f), 127 - 3);
  // Anything above 448 * 2^k (even by one ulp) goes to the next power.
  EXPECT_EQ(fp8_scale_code(std::nextafter(448.0f, 1e9f)), 128);
  // amax 1: 1/448 = 2^-8.81 -> 2^-8.
  EXPECT_EQ(fp8_scale_code(1.0f), 127 - 8);
  // All-zero block: the 1e-4 floor gives 2^-22 (doc §2.A).
  EXPECT_EQ(fp8_scale_code(0.0f), 127 - 22);
  EXPECT_EQ(fp8_scale_code(1e-6f), 127 - 22);
}

TEST(Fp4Scale, PowerOfTwoRule) {
  EXPECT_EQ(fp4_scale_code(6.0f), 127);
  EXPECT_EQ(fp4_scale_code(3.0f), 126);
  EXPECT_EQ(fp4_scale_code(1.0f), 125);  // 1/6 -> 2^-2.58 -> 2^-2
  EXPECT_EQ(fp4_scale_code(std::nextafter(6.0f, 1e9f)), 128);
  // Floor 6 * 2^-126: (6 * 2^-126) * fl32(1/6) rounds to exactly 2^-126.
  EXPECT_EQ(fp4_scale_code(0.0f), 1);
}

TEST(Fp8Simulate, ScaleOneGridTiesAndSubnormals) {
  // Block max 448 -> s = 1, so values land on the plain e4m3 grid.
  auto x = block_with(
      64, {448.0f, 1.0625f, 1.1875f, -1.0625f, 0.01f, 0x1p-10f, 1.5f * 0x1p-10f, 300.0f, 0.3f});
  fp8_simulate(x.data(), 64, 64);
  EXPECT_EQ(x[0], 448.0f);
  EXPECT_EQ(x[1], 1.0f);   // tie between 1 (m=0) and 1.125 (m=1): even
  EXPECT_EQ(x[2], 1.25f);  // tie between 1.125 (m=1) and 1.25 (m=2): even
  EXPECT_EQ(x[3], -1.0f);
  EXPECT_EQ(x[4], 5 * 0x1p-9f);  // subnormal step 2^-9: 0.01 / 2^-9 = 5.12 -> 5
  EXPECT_EQ(x[5], 0.0f);         // exactly half the smallest subnormal: tie to 0
  EXPECT_EQ(x[6], 0x1p-9f);
  EXPECT_EQ(x[7], 288.0f);   // [256, 448] has step 32: 300 -> 288
  EXPECT_EQ(x[8], 0.3125f);  // [0.25, 0.5) has step 1/32: 0.3 -> 0.3125 (9.6/32 -> 10/32)
  for (int i = 9; i < 64; ++i) EXPECT_EQ(x[i], 0.0f);
}

TEST(Fp8Simulate, NonPowerOfTwoMax) {
  // Block max 1 -> s = 2^-8: 1 maps to 256; 0.3 * 256 = 76.8 -> 80 (step 8 in [64, 128)).
  auto x = block_with(64, {1.0f, 0.3f, -0.3f, 0.0f});
  fp8_simulate(x.data(), 64, 64);
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_EQ(x[1], 80.0f / 256.0f);
  EXPECT_EQ(x[2], -80.0f / 256.0f);
  EXPECT_EQ(x[3], 0.0f);
}

TEST(Fp8Simulate, AmaxFloor) {
  // Max 1e-6 < 1e-4: s = 2^-22, 1e-6 * 2^22 = 4.19 -> 4 (step 0.5 in [4, 8)).
  auto x = block_with(64, {1e-6f, -3e-7f});
  fp8_simulate(x.data(), 64, 64);
  EXPECT_EQ(x[0], 4.0f * 0x1p-22f);
  EXPECT_EQ(x[1], -1.25f * 0x1p-22f);  // 1.258 -> 1.25 (step 0.125 in [1, 2))
  // All zeros stay zeros (and keep their sign bit only as -0/+0, which compare equal).
  std::vector<float> z(128, 0.0f);
  fp8_simulate(z.data(), 128, 128);
  for (float v : z) EXPECT_EQ(v, 0.0f);
}

TEST(Fp8Simulate, BlocksAreIndependent) {
  std::vector<float> x(128, 0.0f);
  x[0] = 448.0f;  // block 0: s = 1; step in [0.25, 0.5) is 2^-5, 0.3 -> 10/32
  x[1] = 0.3f;
  x[64] = 1.0f;  // block 1: s = 2^-8; 0.3 * 256 = 76.8 -> 80 (step 8 in [64, 128))
  x[65] = 0.3f;
  fp8_simulate(x.data(), 128, 64);
  EXPECT_EQ(x[1], 0.3125f);
  EXPECT_EQ(x[65], 0.3125f);
  x[1] = 0.01f;
  x[65] = 0.01f;
  fp8_simulate(x.data(), 128, 64);
  EXPECT_EQ(x[1], 5 * 0x1p-9f);     // s = 1: subnormal grid
  EXPECT_EQ(x[65], 2.5f / 256.0f);  // s = 2^-8: 2.56 -> 2.5 (step 0.25 in [2, 4))
}

TEST(Fp4Simulate, TiesToEvenAtScaleOne) {
  // Max 6 -> s = 1. Ties listed in §2.A: 0.25->0, 0.75->1, 1.25->1, 1.75->2, 2.5->2, 3.5->4, 5->4.
  auto x = block_with(
      32, {6.0f, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, -5.0f, 0.26f, -0.75f, 5.1f});
  fp4_simulate(x.data(), 32, 32);
  const float want[] = {6, 0, 1, 1, 2, 2, 4, 4, -4, 0.5f, -1, 6};
  for (int i = 0; i < 12; ++i) EXPECT_EQ(x[i], want[i]) << "element " << i;
}

TEST(Fp4Simulate, ScaledBlockAndZeroBlock) {
  // Max 1 -> s = 2^-2: 1 maps to 4, 0.3 -> 1.2 -> 1 -> 0.25, 0.1 -> 0.4 -> 0.5 -> 0.125.
  std::vector<float> x(64, 0.0f);
  x[0] = 1.0f;
  x[1] = 0.3f;
  x[2] = -0.1f;
  fp4_simulate(x.data(), 64, 32);
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_EQ(x[1], 0.25f);
  EXPECT_EQ(x[2], -0.125f);
  for (int i = 32; i < 64; ++i) EXPECT_EQ(x[i], 0.0f);  // block 1 all zero: stays zero
}

// Storage variants hold the same rounding: dequantize(quantize(x)) == simulate(x), bitwise.
TEST(ActQuant, StorageRoundTripEqualsSimulation) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = 512;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i)
    x[i] = normal(rng) * std::ldexp(1.0f, static_cast<int>(i / 64) * 3 - 10);
  x[70] = 0.0f;

  for (int64_t block : {64, 128}) {
    std::vector<uint8_t> codes(n), scales(n / block);
    std::vector<float> sim = x, deq(n);
    fp8_simulate(sim.data(), n, block);
    fp8_quantize(x.data(), n, block, codes.data(), scales.data());
    fp8_dequantize(codes.data(), scales.data(), n, block, deq.data());
    EXPECT_EQ(std::memcmp(sim.data(), deq.data(), n * sizeof(float)), 0) << "fp8 block " << block;
  }
  std::vector<uint8_t> packed(n / 2), scales(n / 32);
  std::vector<float> sim = x, deq(n);
  fp4_simulate(sim.data(), n, 32);
  fp4_quantize(x.data(), n, 32, packed.data(), scales.data());
  fp4_dequantize(packed.data(), scales.data(), n, 32, deq.data());
  EXPECT_EQ(std::memcmp(sim.data(), deq.data(), n * sizeof(float)), 0);
}

// Every simulated value is a representable code times the block's power-of-two scale, the block
// maximum maps into (224, 448] (FP8) or (3, 6] (FP4) and the simulation is idempotent.
TEST(ActQuant, Invariants) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uni(-3.0f, 3.0f);
  std::vector<float> x(256);
  for (float& v : x) v = uni(rng);
  std::vector<uint8_t> codes(256), scales(4);
  fp8_quantize(x.data(), 256, 64, codes.data(), scales.data());
  for (int b = 0; b < 4; ++b) {
    float amax = 0.0f;
    for (int i = 0; i < 64; ++i) amax = std::fmax(amax, std::fabs(x[b * 64 + i]));
    const float q = amax / e8m0_to_f32(scales[b]);
    EXPECT_GT(q, 224.0f);
    EXPECT_LE(q, 448.0f);
  }
  std::vector<float> once = x;
  fp8_simulate(once.data(), 256, 64);
  std::vector<float> twice = once;
  fp8_simulate(twice.data(), 256, 64);
  EXPECT_EQ(once, twice);
  fp4_simulate(once.data(), 256, 32);
  twice = once;
  fp4_simulate(twice.data(), 256, 32);
  EXPECT_EQ(once, twice);
}

}  // namespace
}  // namespace frugal::quant
