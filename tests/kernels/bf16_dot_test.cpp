// The bf16 dot-product GEMM (Kernels::matmul with MatmulInput::kBf16Exact) against the scalar
// oracle, on x rounded like --act-quant (e4m3 x power of two per 128 values, exact in bf16):
// FP8 and MXFP4 weights, tails in rows, columns and tokens, strides, one and two threads; and
// every fall-back to the f32 kernels (FRUGAL_BF16_DOT=0, the option, ISA levels without it, too
// few tokens, other formats, inputs and scales whose products could be subnormal, a broken
// promise).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "kernels/ref/ref.h"
#include "quant/act_quant.h"
#include "test_util.h"

namespace frugal::kernels {
namespace {

using quant::WeightFormat;
using testing::make_weight;
using testing::random_vector;

// x [m, ldx] with the first `cols` of each row rounded as act_quant does (FP8 e4m3, 1 x 128
// blocks, power-of-two scales); padding between rows stays arbitrary (NaN: must not be read).
std::vector<float> act_quant_x(int64_t m, int64_t cols, int64_t ldx, std::mt19937& rng) {
  std::vector<float> x = random_vector(m * ldx, rng, 3.0f);
  for (int64_t t = 0; t < m; ++t) {
    float* row = x.data() + t * ldx;
    const int64_t full = cols / 128 * 128;
    if (full > 0) quant::fp8_simulate(row, full, 128);
    if (cols > full) quant::fp8_simulate(row + full, cols - full, cols - full);
    for (int64_t c = cols; c < ldx; ++c) row[c] = std::nanf("");
  }
  return x;
}

// The bf16 copy of x that kBf16Exact needs (the model passes its scratch).
std::vector<uint16_t> xb_for(int64_t m, int64_t cols) {
  return std::vector<uint16_t>(static_cast<size_t>(m * Kernels::bf16_x_stride(cols)));
}

// y of `k` (kBf16Exact) against the oracle. Products are exact on both sides (bf16 x bf16 in
// f32; the oracle's f32 product of the same values is exact too), so the two results are f32 sums
// of the same exact terms in different orders: the bound of matmul_test (test_util.h,
// sum_order_bound), relative to sum |x w|. `abs_slack` 0 makes flushed subnormals visible.
void expect_matches_oracle(const Kernels& k, const testing::TestWeight& w, int64_t m,
                           const std::vector<float>& x, int64_t ldx, int64_t ldy,
                           const std::string& what, double abs_slack = 1e-30) {
  std::vector<float> y(static_cast<size_t>(m * ldy), -7.0f), want(y.size(), -7.0f);
  auto xb = xb_for(m, w.view.cols);
  k.matmul(w.view, m, x.data(), ldx, y.data(), ldy, MatmulInput::kBf16Exact, xb);
  testing::oracle().matmul(w.view, m, x.data(), ldx, want.data(), ldy);
  testing::expect_y_matches(w, m, x, ldx, y, want, ldy, what, abs_slack);
}

// kBf16Exact gives bit for bit what the f32 overload gives (a fall-back).
void expect_same_as_f32(const Kernels& k, const quant::WeightView& w, int64_t m,
                        const std::vector<float>& x, const std::string& what) {
  std::vector<float> a(static_cast<size_t>(m * w.rows)), b(a.size());
  auto xb = xb_for(m, w.cols);
  k.matmul(w, m, x.data(), a.data(), MatmulInput::kBf16Exact, xb);
  k.matmul(w, m, x.data(), b.data());
  EXPECT_EQ(a, b) << what;
}

std::string describe(WeightFormat f, int64_t rows, int64_t cols, int64_t m) {
  return std::string(quant::weight_format_name(f)) + " [" + std::to_string(rows) + ", " +
         std::to_string(cols) + "] m=" + std::to_string(m);
}

#define BF16_DOT_OR_SKIP(var, want_pool)                                                            \
  if (!cpu_has_bf16_dot()) {                                                                   \
    GTEST_SKIP() << "this CPU has no AVX512-BF16: kBf16Exact always runs the f32 kernels "     \
                    "(FallsBack covers that)";                                                 \
  }                                                                                            \
  auto var##_r = Kernels::create({.isa = Isa::kAvx512, .pool = (want_pool), .bf16_dot = true});     \
  ASSERT_TRUE(var##_r.ok()) << var##_r.status().to_string();                                   \
  const Kernels& var = var##_r.value();                                                        \
  ASSERT_TRUE(var.bf16_dot())

TEST(Bf16Dot, MatchesOracle) {
  auto pool2 = testing::make_pool(2);
  for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), pool2.get()}) {
    BF16_DOT_OR_SKIP(k, pool);
    std::mt19937 rng(7);
    const struct {
      int64_t rows, cols;
    } shapes[] = {{64, 256}, {70, 200}, {129, 300}, {17, 1000}, {200, 512}, {33, 64}, {1, 34},
                  {9, 2200}};  // several passes of the k-lane kernel
    for (WeightFormat f : {WeightFormat::kFP8Block, WeightFormat::kMXFP4}) {
      const int64_t m0 = k.bf16_dot_min_tokens(f);
      for (const auto& s : shapes) {
        const auto w = make_weight(f, s.rows, s.cols, rng);
        // MXFP4: the k-lane kernel below 32 tokens, then the tile; FP8: the tile.
        for (int64_t m : {m0, m0 + 1, m0 + 5, 2 * m0 + 7, int64_t{31}, int64_t{32}, int64_t{70}}) {
          const auto x = act_quant_x(m, s.cols, s.cols, rng);
          expect_matches_oracle(k, w, m, x, s.cols, s.rows, describe(f, s.rows, s.cols, m));
        }
      }
    }
  }
}

// The bf16 path really runs: its summation order differs from the f32 GEMM's (pairs, then
// tiles of 256 columns, or lanes along k), so among thousands of sums of 512 terms some differ
// in the last bits.
TEST(Bf16Dot, RunsTheBf16Path) {
  BF16_DOT_OR_SKIP(k, nullptr);
  std::mt19937 rng(11);
  for (auto [f, m] : {std::pair{WeightFormat::kFP8Block, int64_t{40}},
                      std::pair{WeightFormat::kMXFP4, int64_t{40}},
                      std::pair{WeightFormat::kMXFP4, int64_t{12}}}) {  // tile, tile, k-lane
    const auto w = make_weight(f, 200, 512, rng);
    const auto x = act_quant_x(m, 512, 512, rng);
    std::vector<float> a(static_cast<size_t>(m * 200)), b(a.size());
    auto xb = xb_for(m, w.view.cols);
    k.matmul(w.view, m, x.data(), a.data(), MatmulInput::kBf16Exact, xb);
    k.matmul(w.view, m, x.data(), b.data());
    EXPECT_NE(a, b) << quant::weight_format_name(f);
  }
}

TEST(Bf16Dot, Strided) {
  BF16_DOT_OR_SKIP(k, nullptr);
  std::mt19937 rng(8);
  for (WeightFormat f : {WeightFormat::kFP8Block, WeightFormat::kMXFP4}) {
    const int64_t m = k.bf16_dot_min_tokens(f) + 3;
    const auto w = make_weight(f, 90, 384, rng);
    const auto x = act_quant_x(m, 384, 400, rng);
    expect_matches_oracle(k, w, m, x, 400, 95, describe(f, 90, 384, m) + " strided");
  }
}

// The smallest weights and x the bf16 path accepts (products down to the grid 2^-126, all
// normal) still match the oracle with no absolute slack; one step smaller, it falls back to the
// f32 kernels (bit for bit), which keep the subnormal products the oracle keeps.
TEST(Bf16Dot, SubnormalProductsNeverFlushed) {
  BF16_DOT_OR_SKIP(k, nullptr);
  std::mt19937 rng(9);
  const int64_t cols = 256;
  for (WeightFormat f : {WeightFormat::kFP8Block, WeightFormat::kMXFP4}) {
    const int64_t m = k.bf16_dot_min_tokens(f) + 2;
    const int step = f == WeightFormat::kFP8Block ? -9 : -1;
    // x: e4m3 values times 2^-40 (nonzero values have exponents >= -40 - 9, grid >= 2^-56).
    std::vector<float> x = act_quant_x(m, cols, cols, rng);
    for (float& v : x) v = std::ldexp(v, -40 - 3);  // act_quant scales here are 2^-6 .. 2^-5
    int x_grid = 0;
    for (float v : x) {
      if (v != 0.0f) x_grid = std::min(x_grid, std::ilogb(v) - 7);
    }
    // Scale code whose weight grid lands the product grid exactly on 2^-126, then one lower.
    const int code_ok = -126 - x_grid - step + 127;
    for (int code : {code_ok, code_ok - 1}) {
      auto w = make_weight(f, 48, cols, rng);
      for (auto& s : w.scales) s = static_cast<uint8_t>(code);
      w.dense.assign(w.dense.size(), 0.0f);
      quant::dequantize(w.view, w.dense.data());
      const std::string what = describe(f, 48, cols, m) + " scale code " + std::to_string(code);
      expect_matches_oracle(k, w, m, x, cols, 48, what, /*abs_slack=*/0.0);
      if (code < code_ok) expect_same_as_f32(k, w.view, m, x, what + " (falls back)");
    }
    // A subnormal x (exact in bf16) falls back too.
    auto w = make_weight(f, 48, cols, rng);
    x[5] = 0x1p-130f;
    expect_same_as_f32(k, w.view, m, x, describe(f, 48, cols, m) + " subnormal x");
  }
}

// MXFP4 is decoded by adding the scale to bf16 exponent fields, valid while 6 x 2^(s - 127) is
// finite (codes <= 252): code 252 runs the bf16 path and matches the oracle, 253 falls back.
TEST(Bf16Dot, LargestMxfp4Scales) {
  BF16_DOT_OR_SKIP(k, nullptr);
  std::mt19937 rng(12);
  const int64_t m = k.bf16_dot_min_tokens(WeightFormat::kMXFP4) + 1, cols = 128;
  std::vector<float> x = act_quant_x(m, cols, cols, rng);
  for (float& v : x) v = std::ldexp(v, -120);  // keeps the sums finite
  for (int code : {252, 253}) {
    auto w = make_weight(WeightFormat::kMXFP4, 40, cols, rng);
    for (auto& sc : w.scales) sc = static_cast<uint8_t>(code);
    if (code > 252) {  // magnitudes <= 1 only, so that the f32 values stay finite (<= 2^126)
      const uint8_t small[] = {0x0, 0x1, 0x2, 0x8, 0x9, 0xa};
      for (size_t i = 0; i < w.data.size(); ++i) {
        w.data[i] = static_cast<uint8_t>(small[i % 6] | small[(i / 6) % 6] << 4);
      }
    }
    quant::dequantize(w.view, w.dense.data());
    const std::string what = "mxfp4 scale code " + std::to_string(code);
    expect_matches_oracle(k, w, m, x, cols, 40, what, /*abs_slack=*/0.0);
    if (code > 252) expect_same_as_f32(k, w.view, m, x, what + " (falls back)");
  }
}

TEST(Bf16Dot, FallsBack) {
  std::mt19937 rng(10);
  const int64_t m = 40;
  const auto fp8 = make_weight(WeightFormat::kFP8Block, 70, 256, rng);
  const auto bf16 = make_weight(WeightFormat::kBF16, 70, 256, rng);
  const auto x = act_quant_x(m, 256, 256, rng);
  // Levels without AVX512-BF16 (and every level on a CPU without it).
  for (Isa isa : supported_isas()) {
    auto k = Kernels::create({.isa = isa});
    ASSERT_TRUE(k.ok());
    if (isa != Isa::kAvx512 && isa != Isa::kAmx) {
      EXPECT_FALSE(k->bf16_dot()) << isa_name(isa);
    }
    if (!k->bf16_dot()) {
      expect_same_as_f32(*k, fp8.view, m, x, std::string("isa ") + std::string(isa_name(isa)));
    }
  }
  if (!cpu_has_bf16_dot()) {
    GTEST_SKIP() << "this CPU has no AVX512-BF16: the rest needs it";
  }
  {  // FRUGAL_BF16_DOT=0, and the option
    ASSERT_EQ(setenv("FRUGAL_BF16_DOT", "0", 1), 0);
    auto off = Kernels::create({.isa = Isa::kAvx512});
    ASSERT_EQ(unsetenv("FRUGAL_BF16_DOT"), 0);
    auto on = Kernels::create({.isa = Isa::kAvx512});
    auto opt_off = Kernels::create({.isa = Isa::kAvx512, .bf16_dot = false});
    ASSERT_TRUE(off.ok() && on.ok() && opt_off.ok());
    EXPECT_FALSE(off->bf16_dot());
    EXPECT_FALSE(opt_off->bf16_dot());
    EXPECT_TRUE(on->bf16_dot());
    expect_same_as_f32(*off, fp8.view, m, x, "FRUGAL_BF16_DOT=0");
    expect_same_as_f32(*opt_off, fp8.view, m, x, "bf16_dot = false");
  }
  BF16_DOT_OR_SKIP(k, nullptr);
  // Too few tokens, a format without the bf16 path.
  const int64_t few = k.bf16_dot_min_tokens(WeightFormat::kFP8Block) - 1;
  expect_same_as_f32(k, fp8.view, few, x, "m below min_tokens");
  expect_same_as_f32(k, bf16.view, m, x, "bf16 weights");
#ifdef NDEBUG
  // A broken promise (release builds; debug builds stop on a check).
  std::vector<float> bad = x;
  bad[3] = 1.0f + 0x1p-20f;
  expect_same_as_f32(k, fp8.view, m, bad, "x not exact in bf16");
#endif
}

TEST(Bf16Dot, PeakProbe) {
  BF16_DOT_OR_SKIP(k, nullptr);
  EXPECT_EQ(k.bf16_dot_peak(1000), uint64_t{1000} * 24 * 32 * 2);
}

}  // namespace
}  // namespace frugal::kernels
