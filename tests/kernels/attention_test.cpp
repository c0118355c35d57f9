// Attention over cache entries with the sink (doc §2.3): every ISA against the oracle, with a
// bound derived from the score and accumulation orders; the oracle against a double-precision
// evaluation of the reference `sparse_attn`; and the semantic corner cases (index -1 skipped,
// sink only in the denominator and not in the max, a query without entries).
#include <gtest/gtest.h>

#include <limits>

#include "kernels/ref/ref.h"
#include "test_util.h"

namespace frugal::kernels {
namespace {

using testing::random_vector;
constexpr double kU = 0x1p-24;

struct Case {
  int64_t m, n_heads, d, n_kv, n_idx;
};

struct Data {
  Case c;
  std::vector<float> q, kv, sink;
  std::vector<int32_t> idx;
  float scale;
  AttentionArgs args(float* out) const {
    return {.q = q.data(),
            .kv = kv.data(),
            .idx = idx.data(),
            .sink = sink.data(),
            .out = out,
            .m = c.m,
            .n_heads = c.n_heads,
            .head_dim = c.d,
            .n_kv = c.n_kv,
            .n_idx = c.n_idx,
            .scale = scale};
  }
};

Data make(const Case& c, std::mt19937& rng) {
  Data d{c,
         random_vector(c.m * c.n_heads * c.d, rng),
         random_vector(c.n_kv * c.d, rng),
         random_vector(c.n_heads, rng, 2.0f),
         std::vector<int32_t>(c.m * c.n_idx),
         1.0f / std::sqrt(static_cast<float>(c.d))};
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(c.n_kv - 1));
  for (size_t i = 0; i < d.idx.size(); ++i) d.idx[i] = (i % 5 == 3) ? -1 : pick(rng);
  return d;
}

// Exact (double) attention of query t, head h: out[d] and, per dim, sum_i w_i |v_i| (the scale
// of the output's rounding errors); also the largest bound on one score's f32 error.
struct Exact {
  std::vector<double> out, mag;
  double score_err = 0;
  int64_t n_valid = 0;
};

Exact exact(const Data& a, int64_t t, int64_t h) {
  const Case& c = a.c;
  const float* q = a.q.data() + (t * c.n_heads + h) * c.d;
  std::vector<double> s;
  std::vector<const float*> rows;
  Exact e{std::vector<double>(c.d, 0.0), std::vector<double>(c.d, 0.0)};
  for (int64_t i = 0; i < c.n_idx; ++i) {
    const int32_t j = a.idx[t * c.n_idx + i];
    if (j < 0) continue;
    const float* k = a.kv.data() + j * c.d;
    double dot = 0, mag = 0;
    for (int64_t x = 0; x < c.d; ++x) {
      dot += static_cast<double>(q[x]) * k[x];
      mag += std::fabs(static_cast<double>(q[x]) * k[x]);
    }
    s.push_back(dot * a.scale);
    rows.push_back(k);
    e.score_err = std::max(e.score_err, testing::sum_order_bound(c.d) * mag * a.scale +
                                            2 * kU * std::fabs(dot * a.scale));
  }
  e.n_valid = static_cast<int64_t>(s.size());
  if (s.empty()) return e;
  const double mx = *std::max_element(s.begin(), s.end());
  double den = std::exp(static_cast<double>(a.sink[h]) - mx);
  for (double v : s) den += std::exp(v - mx);
  for (size_t i = 0; i < s.size(); ++i) {
    const double w = std::exp(s[i] - mx) / den;
    for (int64_t x = 0; x < c.d; ++x) {
      e.out[x] += w * rows[i][x];
      e.mag[x] += w * std::fabs(rows[i][x]);
    }
  }
  return e;
}

// |got - want| per dim <= factor * sum_i w_i |v_i|, where the factor covers: each unnormalised
// weight e^{s_i - max} off by the score errors of s_i and of the max (2 * score_err) and by the
// exp implementations (8 u each side) and the online rescaling (1 u per chunk of 64); the ratio
// to the denominator doubling that; and the weighted sum in another order (2 gamma_{n + 2}).
void check(const std::vector<float>& got, const std::vector<float>& want, const Data& a,
           bool against_exact, const std::string& what) {
  const Case& c = a.c;
  int bad = 0;
  for (int64_t t = 0; t < c.m; ++t) {
    for (int64_t h = 0; h < c.n_heads; ++h) {
      const Exact e = exact(a, t, h);
      const double eps = 2 * e.score_err + 16 * kU + (c.n_idx / 64 + 1) * kU;
      const double factor = 2 * eps + testing::sum_order_bound(e.n_valid + 2) + 4 * kU;
      for (int64_t x = 0; x < c.d; ++x) {
        const size_t i = (t * c.n_heads + h) * c.d + x;
        const double ref = against_exact ? e.out[x] : want[i];
        if (!(std::fabs(got[i] - ref) <= factor * e.mag[x] + 1e-30) && ++bad <= 5) {
          ADD_FAILURE() << what << " t=" << t << " h=" << h << " dim " << x << ": " << got[i]
                        << " vs " << ref << " (bound " << factor * e.mag[x] << ")";
        }
      }
    }
  }
}

const Case kCases[] = {{1, 1, 16, 3, 1},      {2, 5, 48, 50, 7},      {3, 8, 64, 300, 64},
                       {2, 13, 512, 200, 65}, {1, 64, 512, 700, 200}, {2, 3, 20, 40, 9}};

std::string name(const Case& c) {
  return "m=" + std::to_string(c.m) + " heads=" + std::to_string(c.n_heads) +
         " d=" + std::to_string(c.d) + " entries=" + std::to_string(c.n_idx);
}

class AttentionTest : public ::testing::TestWithParam<Isa> {};

TEST_P(AttentionTest, MatchesOracle) {
  auto pool = testing::make_pool(2);
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), pool.get());
  std::mt19937 rng(30);
  for (const Case& c : kCases) {
    const Data a = make(c, rng);
    std::vector<float> got(c.m * c.n_heads * c.d, 7.0f), want(got.size(), 7.0f);
    k.attention(a.args(got.data()));
    testing::oracle().attention(a.args(want.data()));
    check(got, want, a, false, std::string(isa_name(GetParam())) + " " + name(c));
  }
}

TEST_P(AttentionTest, CornerCases) {
  FRUGAL_KERNELS_OR_SKIP(k, GetParam(), nullptr);
  std::mt19937 rng(31);
  Data a = make({2, 2, 32, 4, 3}, rng);
  // Query 0 attends entry 2 only (its -1s are skipped). Head 0's sink equals that entry's score,
  // so the sink doubles the denominator and out = v / 2.
  a.idx = {2, -1, -1, -1, -1, -1};
  double s = 0;
  for (int x = 0; x < 32; ++x) s += static_cast<double>(a.q[x]) * a.kv[2 * 32 + x];
  a.sink[0] = static_cast<float>(s * a.scale);
  a.sink[1] = 1000.0f;  // head 1: sink far above the max: not in the max, output -> 0, finite
  std::vector<float> out(2 * 2 * 32, 7.0f);
  k.attention(a.args(out.data()));
  for (int x = 0; x < 32; ++x) {
    EXPECT_NEAR(out[x], a.kv[2 * 32 + x] / 2, 1e-6 * (1 + std::fabs(a.kv[2 * 32 + x])));
    EXPECT_EQ(out[32 + x], 0.0f);
    EXPECT_EQ(out[64 + x], 0.0f);  // query 1 has no real entry: zeros
    EXPECT_EQ(out[96 + x], 0.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, AttentionTest, ::testing::ValuesIn(supported_isas()),
                         testing::isa_param_name);

TEST(AttentionOracle, MatchesDoublePrecisionSparseAttn) {
  std::mt19937 rng(32);
  for (const Case& c : kCases) {
    const Data a = make(c, rng);
    std::vector<float> got(c.m * c.n_heads * c.d);
    testing::oracle().attention(a.args(got.data()));
    check(got, got, a, true, "oracle " + name(c));
  }
}

}  // namespace
}  // namespace frugal::kernels
