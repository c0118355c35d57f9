// The non-GEMM ops: every ISA variant against the scalar oracle (bounds stated per op, in units
// of u = 2^-24, the f32 unit roundoff), and the oracle against direct double-precision
// evaluations of the reference formulas (architecture doc §2.3, §2.6, §2.7).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "kernels/ref/ref.h"
#include "test_util.h"

namespace frugal::kernels {
namespace {

using testing::random_vector;
constexpr double kU = 0x1p-24;

class OpsTest : public ::testing::TestWithParam<Isa> {};

void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                  const std::vector<double>& bound, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= bound[i]) && ++bad <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: " << got[i] << " vs oracle " << want[i] << " (bound "
                    << bound[i] << ")";
    }
  }
}

// Relative bound c * u * |want| (plus a floor far below any value the test produces).
std::vector<double> rel_bound(const std::vector<float>& want, double c) {
  std::vector<double> b(want.size());
  for (size_t i = 0; i < want.size(); ++i) b[i] = c * kU * std::fabs(want[i]) + 1e-30;
  return b;
}

TEST_P(OpsTest, RmsNorm) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(10);
  for (int64_t n : {1, 7, 16, 100, 4096}) {
    const int64_t m = 3;
    const auto x = random_vector(m * n, rng, 3.0f), w = random_vector(n, rng);
    std::vector<float> got(m * n), want(m * n);
    k.rms_norm(x.data(), w.data(), m, n, 1e-6f, got.data());
    testing::oracle().rms_norm(x.data(), w.data(), m, n, 1e-6f, want.data());
    // Sum of squares in another order: <= 2 gamma_n relative; rsqrt halves it; then ~6 roundings.
    expect_close(got, want, rel_bound(want, n + 8), "rms_norm n=" + std::to_string(n));
    k.rms_norm(x.data(), m, n, 1e-6f, got.data());
    testing::oracle().rms_norm(x.data(), m, n, 1e-6f, want.data());
    expect_close(got, want, rel_bound(want, n + 8), "rms_norm (no weight) n=" + std::to_string(n));
  }
}

TEST_P(OpsTest, RopeForwardAndInverse) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(11);
  for (int64_t rope_dim : {2, 14, 64}) {
    const int64_t dim = 100 + rope_dim, n_vec = 5;
    const auto x = random_vector(n_vec * dim, rng);
    std::vector<float> cs(rope_dim / 2), sn(rope_dim / 2);
    for (int64_t i = 0; i < rope_dim / 2; ++i) {
      cs[i] = std::cos(0.37f * (i + 1));
      sn[i] = std::sin(0.37f * (i + 1));
    }
    for (RopeDirection dir : {RopeDirection::kForward, RopeDirection::kInverse}) {
      std::vector<float> got = x, want = x;
      k.rope(got.data(), n_vec, dim, rope_dim, cs.data(), sn.data(), dir);
      testing::oracle().rope(want.data(), n_vec, dim, rope_dim, cs.data(), sn.data(), dir);
      // Each output is a*c -+ b*s: at most 3 roundings either way (FMA or not).
      std::vector<double> bound(x.size());
      for (int64_t v = 0; v < n_vec; ++v) {
        for (int64_t e = 0; e < dim; ++e) {
          const int64_t r = e - (dim - rope_dim);
          double mag = std::fabs(x[v * dim + e]);
          if (r >= 0) {  // even: |a c| + |b s|; odd: |a s| + |b c|
            const int64_t i = r / 2;
            const double a = std::fabs(x[v * dim + e - r % 2]);
            const double b = std::fabs(x[v * dim + e - r % 2 + 1]);
            mag = r % 2 == 0 ? a * std::fabs(cs[i]) + b * std::fabs(sn[i])
                             : a * std::fabs(sn[i]) + b * std::fabs(cs[i]);
          }
          bound[v * dim + e] = (r >= 0 ? 4 * kU * mag : 0.0) + 1e-30;
        }
      }
      expect_close(got, want, bound, "rope " + std::to_string(rope_dim));
    }
  }
}

TEST_P(OpsTest, Softmax) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(12);
  for (int64_t n : {1, 5, 16, 33, 300}) {
    auto x = random_vector(2 * n, rng, 5.0f);
    if (n > 1) x[0] = -std::numeric_limits<float>::infinity();  // a masked entry gets exactly 0
    std::vector<float> got = x, want = x;
    k.softmax(got.data(), 2, n);
    testing::oracle().softmax(want.data(), 2, n);
    // exp within 8 u of the oracle's (exp512 / exp256 <= ~3 ulp, libm <= 1), the sum in another
    // order (2 gamma_n), one division.
    expect_close(got, want, rel_bound(want, 2 * (n + 1) + 24), "softmax n=" + std::to_string(n));
    if (n > 1) {
      EXPECT_EQ(got[0], 0.0f);
    }
  }
}

TEST_P(OpsTest, SwigluWithAndWithoutClamp) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(13);
  const int64_t n = 1000;
  auto g = random_vector(n, rng, 8.0f), u = random_vector(n, rng, 8.0f);
  g[0] = 200.0f;   // e^-200 underflows: silu = g, then clamped to 10 when limited
  g[1] = -200.0f;  // e^200 overflows: silu = -0
  for (float limit : {0.0f, 10.0f}) {
    std::vector<float> got(n), want(n);
    k.swiglu(g.data(), u.data(), n, limit, 0.75f, got.data());
    testing::oracle().swiglu(g.data(), u.data(), n, limit, 0.75f, want.data());
    // silu = g / (1 + e^-g): exp within 8 u, then +1, /, * u, * scale: 16 u relative.
    expect_close(got, want, rel_bound(want, 16), "swiglu limit " + std::to_string(limit));
  }
}

TEST_P(OpsTest, HyperConnections) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(14);
  const int64_t hc = 4, dim = 200, m = 3, n_mix = (2 + hc) * hc;
  const auto x = random_vector(m * hc * dim, rng), fn = random_vector(n_mix * hc * dim, rng, 0.05f);
  const auto base = random_vector(n_mix, rng, 0.5f), y = random_vector(m * dim, rng);
  const std::vector<float> scale = {0.7f, 1.3f, 0.9f};
  struct Out {
    std::vector<float> mixes, h, post, comb, next;
  };
  auto run = [&](const Kernels& kk) {
    Out o{std::vector<float>(m * n_mix), std::vector<float>(m * dim), std::vector<float>(m * hc),
          std::vector<float>(m * hc * hc), std::vector<float>(m * hc * dim)};
    kk.hc_pre({.x = x.data(),
               .fn = {.format = quant::WeightFormat::kF32,
                      .rows = n_mix,
                      .cols = hc * dim,
                      .data = fn.data()},
               .base = base.data(),
               .scale = scale.data(),
               .mixes = o.mixes.data(),
               .h = o.h.data(),
               .post = o.post.data(),
               .comb = o.comb.data(),
               .m = m,
               .hc_mult = hc,
               .dim = dim});
    kk.hc_post({.y = y.data(),
                .x = x.data(),
                .post = o.post.data(),
                .comb = o.comb.data(),
                .out = o.next.data(),
                .m = m,
                .hc_mult = hc,
                .dim = dim});
    return o;
  };
  const Out got = run(k), want = run(testing::oracle());
  // The mixes go through sigmoid / softmax / 20 Sinkhorn rounds: the GEMV's order difference
  // (2 gamma_{4 dim} relative to sum |fn x|, small next to the mixes here) is amplified by a
  // bounded factor; 1e-5 relative is far above it and far below any semantic error.
  auto near = [](const std::vector<float>& a, const std::vector<float>& b, const char* what) {
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_NEAR(a[i], b[i], 1e-5 * (std::fabs(b[i]) + 1.0)) << what << "[" << i << "]";
    }
  };
  near(got.post, want.post, "post");
  near(got.comb, want.comb, "comb");
  near(got.h, want.h, "h");
  near(got.next, want.next, "hc_post");
}

TEST_P(OpsTest, HcPostExact) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(15);
  // hc 4 (V4's) has its own unrolled path; 1 and 3 take the general one. dim 37 ends in a partial
  // vector on every target, 64 in whole ones.
  for (const int64_t hc : {1, 3, 4}) {
    for (const int64_t dim : {37, 64}) {
      const int64_t m = 2;
      const auto x = random_vector(m * hc * dim, rng), y = random_vector(m * dim, rng);
      const auto post = random_vector(m * hc, rng), comb = random_vector(m * hc * hc, rng);
      std::vector<float> got(m * hc * dim), want(m * hc * dim);
      const HcPostArgs a{.y = y.data(),
                         .x = x.data(),
                         .post = post.data(),
                         .comb = comb.data(),
                         .out = got.data(),
                         .m = m,
                         .hc_mult = hc,
                         .dim = dim};
      k.hc_post(a);
      HcPostArgs b = a;
      b.out = want.data();
      testing::oracle().hc_post(b);
      std::vector<double> bound(got.size());
      for (int64_t t = 0; t < m; ++t) {
        for (int64_t kk = 0; kk < hc; ++kk) {
          for (int64_t i = 0; i < dim; ++i) {
            double s = std::fabs(post[t * hc + kk] * y[t * dim + i]);
            for (int64_t j = 0; j < hc; ++j) {
              s += std::fabs(comb[t * hc * hc + j * hc + kk] * x[t * hc * dim + j * dim + i]);
            }
            bound[(t * hc + kk) * dim + i] = testing::sum_order_bound(hc + 1) * s + 1e-30;
          }
        }
      }
      expect_close(got, want, bound,
                   "hc_post hc=" + std::to_string(hc) + " dim=" + std::to_string(dim));
    }
  }
}

// act_quant rounding: bit for bit the oracle (quant::fp8_simulate) on every kind of block: wide
// and narrow magnitude ranges, values exactly halfway between e4m3 neighbours (ties to even),
// e4m3 subnormals, f32 subnormals, signed zeros, all-zero blocks, the largest finite floats, and
// blocks holding inf or NaN; in place and out of place, block sizes 128 and 64.
TEST_P(OpsTest, Fp8RoundIsExact) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> exponent(-40.0f, 40.0f), unit(-1.0f, 1.0f);
  for (int64_t block : {128, 64}) {
    const int64_t n = 48 * block;
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t b = i / block;
      const float range = b % 4 == 0 ? 40.0f : b % 4 == 1 ? 3.0f : 0.3f;  // dynamic range
      x[i] = unit(rng) * std::exp2(std::uniform_real_distribution<float>(-range, range)(rng));
    }
    // Ties: with amax = 448 the scale is 1, so k + 0.5 steps of the e4m3 grid are exact halves.
    for (int64_t i = 0; i < block; ++i) {
      const float step = i < 16 ? 0x1p-9f : std::exp2(static_cast<float>(i % 12 - 3));
      x[block + i] = (static_cast<float>(i % 7) + 0.5f) * step * (i % 2 ? -1.0f : 1.0f);
    }
    x[block] = 448.0f;
    for (int64_t i = 0; i < block; ++i) x[2 * block + i] = 0.0f;           // all zero
    x[3 * block] = -0.0f;                                                  // -0 in a block
    x[3 * block + 1] = std::numeric_limits<float>::denorm_min();           // f32 subnormals
    x[3 * block + 2] = -std::numeric_limits<float>::denorm_min() * 1000.0f;
    x[5 * block + 3] = std::numeric_limits<float>::max();                  // largest finite
    x[5 * block + 4] = -std::numeric_limits<float>::max();
    x[6 * block + 5] = std::numeric_limits<float>::infinity();             // the oracle's way
    x[7 * block + 6] = std::numeric_limits<float>::quiet_NaN();
    x[8 * block + 7] = -std::numeric_limits<float>::infinity();
    std::vector<float> got(n), in_place = x, want(n);
    k.fp8_round(x.data(), n, block, got.data());
    k.fp8_round(in_place.data(), n, block, in_place.data());
    testing::oracle().fp8_round(x.data(), n, block, want.data());
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      const auto bits = [](float v) { return std::bit_cast<uint32_t>(v); };
      if ((bits(got[i]) != bits(want[i]) || bits(in_place[i]) != bits(want[i])) && ++bad <= 5) {
        ADD_FAILURE() << "block " << block << " [" << i << "] x = " << x[i] << ": " << got[i]
                      << " / in place " << in_place[i] << " vs oracle " << want[i];
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, OpsTest, ::testing::ValuesIn(supported_isas()),
                         testing::isa_param_name);

// ---- the oracle against the reference formulas ----

TEST(OpsOracle, TopKMatchesInsertionOracleWithTies) {
  std::mt19937 rng(20);
  std::uniform_int_distribution<int> level(0, 9);  // many ties
  for (int64_t n : {1, 6, 50, 300, 5000}) {        // 5000 / 2100: the heap of indices (k > 2048)
    std::vector<float> x(n);
    for (auto& v : x) v = static_cast<float>(level(rng));
    for (int64_t kk :
         {int64_t{0}, int64_t{1}, std::min<int64_t>(6, n), n, std::min<int64_t>(2100, n)}) {
      std::vector<int32_t> got(kk), want(kk);
      std::vector<float> vals(kk);
      testing::oracle().top_k(x.data(), n, kk, got.data(), vals.data());
      ref::top_k(x.data(), n, kk, want.data(), nullptr);
      EXPECT_EQ(got, want) << "n=" << n << " k=" << kk;
      for (int64_t j = 0; j < kk; ++j) {
        EXPECT_EQ(vals[j], x[got[j]]);
        if (j > 0) {  // descending, ties by ascending index
          EXPECT_TRUE(x[got[j - 1]] > x[got[j]] ||
                      (x[got[j - 1]] == x[got[j]] && got[j - 1] < got[j]));
        }
      }
    }
  }
}

TEST(OpsOracle, SinkhornGivesDoublyStochasticComb) {
  std::mt19937 rng(21);
  const int64_t hc = 4;
  const auto mixes = random_vector((2 + hc) * hc, rng), base = random_vector((2 + hc) * hc, rng);
  const float scale[3] = {1.0f, 1.0f, 1.0f};
  float pre[4], post[4], comb[16];
  ref::hc_split_sinkhorn(mixes.data(), scale, base.data(), hc, 20, 1e-6f, pre, post, comb);
  for (int j = 0; j < 4; ++j) {
    double row = 0, col = 0;
    for (int kk = 0; kk < 4; ++kk) {
      row += comb[j * 4 + kk];
      col += comb[kk * 4 + j];
    }
    EXPECT_NEAR(row, 1.0, 1e-3);
    EXPECT_NEAR(col, 1.0, 1e-5);  // the last normalisation is over columns
    EXPECT_GT(post[j], 0.0f);
    EXPECT_LT(post[j], 2.0f);
    const double want_pre = 1.0 / (1.0 + std::exp(-(mixes[j] + base[j]))) + 1e-6;
    EXPECT_NEAR(pre[j], want_pre, 1e-6);
  }
}

}  // namespace
}  // namespace frugal::kernels
