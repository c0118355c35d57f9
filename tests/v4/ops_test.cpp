// Pieces of the V4 forward pass checked against their definitions: the RoPE/YaRN frequencies
// (doc §2.0) and the Hadamard rotation of the indexer (doc §2.4).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/ref/v4_ops.h"
#include "model/v4/rope.h"

namespace frugal::v4 {
namespace {

// V4 compressed blocks: theta 160000, YaRN factor 16 over 65536, beta 32/1 -> low = 15, high = 25:
// f_i unchanged for i <= 15, divided by 16 for i >= 25, blended with ramp (i - 15) / 10 between.
TEST(V4Rope, YarnFrequenciesOfTheCompressedBlocks) {
  const RopeParams p{.theta = 160000.0,
                     .original_seq_len = 65536,
                     .rope_factor = 16.0,
                     .beta_fast = 32.0,
                     .beta_slow = 1.0};
  const RopeTable yarn(64, p);
  const RopeTable plain(64, RopeParams{.theta = 160000.0});
  ASSERT_EQ(yarn.pairs(), 32);
  for (int i = 0; i < 32; ++i) {
    const float f = plain.freqs()[i];
    EXPECT_NEAR(f, 1.0 / std::pow(160000.0, 2.0 * i / 64), 1e-6 * f) << i;
    const float ramp = std::clamp((i - 15.0f) / 10.0f, 0.0f, 1.0f);
    const float want = f / 16.0f * ramp + f * (1.0f - ramp);
    EXPECT_NEAR(yarn.freqs()[i], want, 1e-6f * f) << i;
  }
  EXPECT_EQ(yarn.freqs()[15], plain.freqs()[15]);
  std::vector<float> c(32), s(32);
  yarn.cos_sin(1000, c.data(), s.data());
  EXPECT_NEAR(c[3], std::cos(1000.0 * yarn.freqs()[3]), 1e-3);
  EXPECT_NEAR(c[3] * c[3] + s[3] * s[3], 1.0f, 1e-6f);
}

TEST(V4Ops, HadamardMatchesTheSylvesterMatrix) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (int n : {1, 2, 32, 128}) {
    std::vector<float> x(n), y(n);
    for (float& v : x) v = nd(rng);
    for (int m = 0; m < n; ++m) {
      double acc = 0;
      for (int k = 0; k < n; ++k) acc += (std::popcount(unsigned(m & k)) % 2 ? -1.0 : 1.0) * x[k];
      y[m] = static_cast<float>(acc / std::sqrt(n));
    }
    kernels::v4ref::hadamard(x.data(), n);
    for (int m = 0; m < n; ++m) EXPECT_NEAR(x[m], y[m], 1e-5f) << n << " " << m;
  }
}

TEST(V4Ops, RoundBf16) {
  float v[3] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-9f, -0.0f};
  kernels::v4ref::round_bf16(v, 3);
  EXPECT_EQ(v[0], 1.0f);            // tie -> even
  EXPECT_EQ(v[1], 1.0f + 0x1p-7f);  // 1.5 ulp -> up
  EXPECT_TRUE(std::signbit(v[2]));
  EXPECT_EQ(kernels::v4ref::softplus(30.0f), 30.0f);
  EXPECT_NEAR(kernels::v4ref::softplus(0.0f), std::log(2.0f), 1e-7f);
}

}  // namespace
}  // namespace frugal::v4
