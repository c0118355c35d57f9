// The same-run machine probes of frugal bench (engine/probes.h): each returns a finite positive
// rate on small working sets (the figures themselves are benchmarks, not tests), and bad probe
// shapes are errors, not crashes.
#include "engine/probes.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "core/thread_pool.h"

namespace frugal::engine {
namespace {

TEST(Probes, RatesArePositive) {
  Result<std::unique_ptr<ThreadPool>> pool = ThreadPool::create({.n_threads = 2});
  ASSERT_TRUE(pool.ok());
  Result<kernels::Kernels> k = kernels::Kernels::create({.pool = pool->get()});
  ASSERT_TRUE(k.ok());
  Result<double> bw = measure_read_bandwidth(*k, {.bytes = uint64_t{16} << 20, .repetitions = 2});
  ASSERT_TRUE(bw.ok()) << bw.status().to_string();
  EXPECT_GT(*bw, 0.0);
  EXPECT_TRUE(std::isfinite(*bw));
  const double peak = measure_fma_peak(*k, 1);
  EXPECT_GT(peak, 0.0);
  EXPECT_TRUE(std::isfinite(peak));
  for (quant::WeightFormat f : {quant::WeightFormat::kFP8Block, quant::WeightFormat::kMXFP4,
                                quant::WeightFormat::kBF16, quant::WeightFormat::kF32}) {
    Result<GemvProbe> g =
        GemvProbe::create({.format = f, .rows = 256, .cols = 512, .ring_bytes = 1 << 20});
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    const double gbps = g->run(*k);
    EXPECT_GT(gbps, 0.0);
    EXPECT_TRUE(std::isfinite(gbps));
  }
}

TEST(Probes, BadGemvShapesAreErrors) {
  Result<GemvProbe> odd =
      GemvProbe::create({.format = quant::WeightFormat::kMXFP4, .rows = 4, .cols = 33});
  EXPECT_FALSE(odd.ok());
  Result<GemvProbe> empty = GemvProbe::create({.rows = 0, .cols = 128});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty"), std::string::npos);
}

}  // namespace
}  // namespace frugal::engine
