// Every matmul variant against the scalar oracle, on every ISA this CPU supports: all four weight
// formats, every FP8 / FP4 code, odd sizes, sizes not multiple of the blocks, one row, strided
// inputs and outputs, token counts that exercise the GEMV and the token-group paths.
#include <gtest/gtest.h>

#include "kernels/ref/ref.h"
#include "test_util.h"

namespace frugal::kernels {
namespace {

using quant::WeightFormat;
using testing::make_weight;
using testing::random_vector;

struct Shape {
  int64_t rows, cols;
};

// Checks y [m, rows] (row stride ldy) of `k` against the oracle. Bound per output: the two f32
// sums of the same products in different orders (test_util.h), relative to sum |x w| (weights are
// dequantized exactly and every product x * w is rounded once, by the multiply or by an FMA).
void expect_matches_oracle(const Kernels& k, const testing::TestWeight& w, int64_t m,
                           const std::vector<float>& x, int64_t ldx, int64_t ldy,
                           const std::string& what) {
  std::vector<float> y(static_cast<size_t>(m * ldy), -7.0f), want(y.size(), -7.0f);
  k.matmul(w.view, m, x.data(), ldx, y.data(), ldy);
  testing::oracle().matmul(w.view, m, x.data(), ldx, want.data(), ldy);
  testing::expect_y_matches(w, m, x, ldx, y, want, ldy, what);
}

class MatmulTest : public ::testing::TestWithParam<Isa> {};

const WeightFormat kFormats[] = {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kFP8Block,
                                 WeightFormat::kMXFP4};

std::string describe(WeightFormat f, Shape s, int64_t m) {
  return std::string(quant::weight_format_name(f)) + " [" + std::to_string(s.rows) + ", " +
         std::to_string(s.cols) + "] m=" + std::to_string(m);
}

TEST_P(MatmulTest, SmallAndOddShapes) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(1);
  const Shape shapes[] = {{1, 2}, {1, 32}, {3, 64}, {5, 130}, {17, 258}, {130, 1000}, {9, 128}};
  for (WeightFormat f : kFormats) {
    for (Shape s : shapes) {
      const auto w = make_weight(f, s.rows, s.cols, rng);
      for (int64_t m : {1, 2, 3, 5, 8, 11}) {
        const auto x = random_vector(m * s.cols, rng);
        expect_matches_oracle(k, w, m, x, s.cols, s.rows, describe(f, s, m));
      }
    }
  }
}

// Several token groups (of up to 8), partial groups, rows in L2-sized blocks.
TEST_P(MatmulTest, ManyTokens) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(2);
  for (WeightFormat f : kFormats) {
    for (Shape s : {Shape{70, 200}, Shape{129, 96}}) {
      const auto w = make_weight(f, s.rows, s.cols, rng);
      for (int64_t m : {17, 40, 100}) {
        const auto x = random_vector(m * s.cols, rng);
        expect_matches_oracle(k, w, m, x, s.cols, s.rows, describe(f, s, m));
      }
    }
  }
}

// Columns beyond one prepared pass of x (8192 / tokens), and a long row for the FP4 guard.
TEST_P(MatmulTest, LongRows) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(3);
  for (WeightFormat f : kFormats) {
    const Shape s{3, 8322};
    const auto w = make_weight(f, s.rows, s.cols, rng);
    for (int64_t m : {1, 8}) {
      const auto x = random_vector(m * s.cols, rng);
      expect_matches_oracle(k, w, m, x, s.cols, s.rows, describe(f, s, m));
    }
    // More rows than one L2 row block with several token groups.
    const Shape b{300, 4200};
    const auto wb = make_weight(f, b.rows, b.cols, rng);
    for (int64_t m : {11, 17}) {  // token groups (AVX2: 4 per group) / groups or tiles
      const auto xb = random_vector(m * b.cols, rng);
      expect_matches_oracle(k, wb, m, xb, b.cols, b.rows, describe(f, b, m));
    }
  }
}

TEST_P(MatmulTest, StridedInputsAndOutputs) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(4);
  for (WeightFormat f : kFormats) {
    const auto w = make_weight(f, 33, 160, rng);
    for (int64_t m : {1, 4, 40}) {
      const auto x = random_vector(m * 200, rng);
      expect_matches_oracle(k, w, m, x, 200, 40, describe(f, {33, 160}, m) + " strided");
    }
  }
}

TEST_P(MatmulTest, ThreadedRowSplit) {
  auto pool = testing::make_pool(2);
  ASSERT_NE(pool, nullptr);
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), pool.get());
  std::mt19937 rng(5);
  for (WeightFormat f : kFormats) {
    const auto w = make_weight(f, 515, 1536, rng);  // big enough to be split
    for (int64_t m : {1, 3, 20, 30}) {
      const auto x = random_vector(m * 1536, rng);
      expect_matches_oracle(k, w, m, x, 1536, 515, describe(f, {515, 1536}, m) + " threaded");
    }
  }
}

// A row's sums do not depend on how the rows are split across threads: the same bits with a pool
// of 2 as on one thread (the model runs an expert's matmuls on one thread or split, moe.cpp, and
// relies on the same results). 1,031 rows: every format is split, into chunks of odd sizes.
TEST_P(MatmulTest, ThreadedRowSplitIsBitExact) {
  auto pool = testing::make_pool(2);
  ASSERT_NE(pool, nullptr);
  FRUGAL_KERNELS_OR_SKIP(k2, GetParam(), pool.get());
  FRUGAL_KERNELS_OR_SKIP(k1, GetParam(), nullptr);
  std::mt19937 rng(7);
  for (WeightFormat f : kFormats) {
    const auto w = make_weight(f, 1031, 1536, rng);
    for (int64_t m : {1, 2, 3, 4, 5, 8, 12, 20, 30}) {
      const auto x = random_vector(m * 1536, rng);
      std::vector<float> y1(m * 1031), y2(m * 1031);
      k1.matmul(w.view, m, x.data(), y1.data());
      k2.matmul(w.view, m, x.data(), y2.data());
      EXPECT_TRUE(y1 == y2) << describe(f, {1031, 1536}, m);
    }
  }
}

// The oracle itself against exact (double) products of the dequantized weights, with extremes:
// the largest e4m3 code times the largest test scale, the smallest subnormal, zeros.
TEST(MatmulOracle, MatchesDoubleProducts) {
  std::mt19937 rng(6);
  for (WeightFormat f : kFormats) {
    const auto w = make_weight(f, 7, 300, rng);
    const auto x = random_vector(2 * 300, rng);
    std::vector<float> y(2 * 7);
    testing::oracle().matmul(w.view, 2, x.data(), y.data());
    for (int t = 0; t < 2; ++t) {
      for (int r = 0; r < 7; ++r) {
        double exact = 0.0, abs_sum = 0.0;
        for (int c = 0; c < 300; ++c) {
          exact += static_cast<double>(x[t * 300 + c]) * w.dense[r * 300 + c];
          abs_sum += std::fabs(static_cast<double>(x[t * 300 + c]) * w.dense[r * 300 + c]);
        }
        EXPECT_LE(std::fabs(y[t * 7 + r] - exact), testing::sum_order_bound(300) / 2 * abs_sum);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, MatmulTest, ::testing::ValuesIn(supported_isas()),
                         testing::isa_param_name);

}  // namespace
}  // namespace frugal::kernels
