// Helpers for the kernel tests: weights of every format (covering every FP8 / FP4 code), random
// activations, and the error bound used to compare a variant with the scalar oracle.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/convert.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "quant/weight.h"

namespace frugal::kernels::testing {

inline std::string isa_param_name(const ::testing::TestParamInfo<Isa>& info) {
  return std::string(isa_name(info.param));
}

// Kernels for `isa` (pool optional). The suites are instantiated for supported_isas() only, so
// the skip below is a guard, not a path a run takes.
#define FRUGAL_KERNELS_OR_SKIP(var, want_isa, want_pool)                                           \
  if (!::frugal::kernels::isa_supported(want_isa)) {                                               \
    GTEST_SKIP() << "this CPU cannot run " << ::frugal::kernels::isa_name(want_isa) << " kernels"; \
  }                                                                                                \
  auto var##_result =                                                                              \
      ::frugal::kernels::Kernels::create({.isa = (want_isa), .pool = (want_pool)});                \
  ASSERT_TRUE(var##_result.ok()) << var##_result.status().to_string();                             \
  const ::frugal::kernels::Kernels& var = var##_result.value()

inline const Kernels& oracle() {
  static const Kernels k = std::move(Kernels::create({.isa = Isa::kScalar}).value());
  return k;
}

inline std::unique_ptr<ThreadPool> make_pool(int n) {
  auto p = ThreadPool::create({.n_threads = n});
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(p).value() : nullptr;
}

// A weight matrix that owns its bytes.
struct TestWeight {
  quant::WeightView view;
  std::vector<uint8_t> data;
  std::vector<uint8_t> scales;
  std::vector<float> dense;  // the exact dequantized values [rows, cols]
};

// FP8: every finite e4m3 code (all but 0x7f / 0xff) appears, cycled in shuffled order; MXFP4:
// every one of the 16 nibbles; scales are random powers of two 2^-6 .. 2^3. bf16 / f32: normal
// values with a spread of magnitudes.
inline TestWeight make_weight(quant::WeightFormat f, int64_t rows, int64_t cols,
                              std::mt19937& rng) {
  using quant::WeightFormat;
  TestWeight w;
  const uint64_t nd = quant::weight_data_bytes(f, rows, cols);
  const uint64_t ns = quant::weight_scale_bytes(f, rows, cols);
  w.data.resize(nd);
  w.scales.resize(ns);
  std::uniform_int_distribution<int> scale_code(127 - 6, 127 + 3);
  for (auto& s : w.scales) s = static_cast<uint8_t>(scale_code(rng));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> expo(-8, 4);
  if (f == WeightFormat::kFP8Block) {
    std::vector<uint8_t> codes;
    for (int c = 0; c < 256; ++c) {
      if ((c & 0x7f) != 0x7f) codes.push_back(static_cast<uint8_t>(c));
    }
    std::shuffle(codes.begin(), codes.end(), rng);
    for (uint64_t i = 0; i < nd; ++i) w.data[i] = codes[i % codes.size()];
  } else if (f == WeightFormat::kMXFP4) {
    std::uniform_int_distribution<int> byte(0, 255);
    for (uint64_t i = 0; i < nd; ++i) w.data[i] = static_cast<uint8_t>(byte(rng));
    for (uint64_t i = 0; i < nd && i < 16; ++i) w.data[i] = static_cast<uint8_t>(i * 17);
  } else if (f == WeightFormat::kBF16) {
    auto* p = reinterpret_cast<uint16_t*>(w.data.data());
    for (int64_t i = 0; i < rows * cols; ++i) {
      p[i] = f32_to_bf16(std::ldexp(normal(rng), expo(rng)));
    }
  } else {
    auto* p = reinterpret_cast<float*>(w.data.data());
    for (int64_t i = 0; i < rows * cols; ++i) p[i] = std::ldexp(normal(rng), expo(rng));
  }
  w.view = {.format = f,
            .rows = rows,
            .cols = cols,
            .data = w.data.data(),
            .scales = ns ? w.scales.data() : nullptr};
  w.dense.resize(static_cast<size_t>(rows * cols));
  quant::dequantize(w.view, w.dense.data());
  return w;
}

inline std::vector<float> random_vector(int64_t n, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> normal(0.0f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = normal(rng);
  return v;
}

// Two f32 evaluations of the same sum of n products in different orders (with or without FMA)
// each differ from the exact sum by at most gamma_{n+1} * sum |x_i w_i| (Higham, Accuracy and
// Stability, §3.1: gamma_k = k u / (1 - k u), u = 2^-24), so they differ from each other by at
// most twice that.
inline double sum_order_bound(int64_t n) {
  const double u = 0x1p-24, k = static_cast<double>(n + 1);
  return 2.0 * k * u / (1.0 - k * u);
}

// Checks y [m, rows] (row stride ldy) against the oracle's `want` for the same x. Bound per output:
// the two f32 sums of the same products in different orders (sum_order_bound), relative to
// sum |x w| (weights are dequantized exactly and every product x * w is rounded once, by the
// multiply or by an FMA), plus `abs_slack` (0 makes flushed subnormals visible). The padding
// between rows of y, filled with -7 by the caller, must be left alone.
inline void expect_y_matches(const TestWeight& w, int64_t m, const std::vector<float>& x,
                             int64_t ldx, const std::vector<float>& y,
                             const std::vector<float>& want, int64_t ldy, const std::string& what,
                             double abs_slack = 1e-30) {
  const double bound = sum_order_bound(w.view.cols);
  int bad = 0;
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t r = 0; r < w.view.rows; ++r) {
      double abs_sum = 0.0;
      for (int64_t c = 0; c < w.view.cols; ++c) {
        abs_sum += std::fabs(static_cast<double>(x[t * ldx + c]) * w.dense[r * w.view.cols + c]);
      }
      const double got = y[t * ldy + r], ref = want[t * ldy + r];
      if (!(std::fabs(got - ref) <= bound * abs_sum + abs_slack) && ++bad <= 5) {
        ADD_FAILURE() << what << ": y[" << t << ", " << r << "] = " << got << ", oracle " << ref
                      << ", bound " << bound * abs_sum;
      }
    }
    for (int64_t r = w.view.rows; r < ldy; ++r) ASSERT_EQ(y[t * ldy + r], -7.0f) << what;
  }
  EXPECT_EQ(bad, 0) << what;
}

}  // namespace frugal::kernels::testing
