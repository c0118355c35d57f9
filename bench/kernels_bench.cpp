// Kernel microbenchmarks (Google Benchmark). Every figure is meant to be read as a ratio to a
// limit measured in the same run: GEMV bytes/s against the read-bandwidth probe (BM_ReadBandwidth,
// a streaming read of a buffer larger than the last-level cache), GEMM flop/s against the FMA
// peak probe (BM_FmaPeak). Run with --benchmark_repetitions=5 --benchmark_report_aggregates_only
// and compare medians; see docs/BENCHMARKS.md.
//
// GEMV working sets: a ring of matrices of the real DeepSeek-V4-Flash shapes whose total size is
// above kWorkingSetBytes, one matrix per iteration, so every byte comes from DRAM as in decode.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "bench_util.h"
#include "core/convert.h"
#include "kernels/kernels.h"
#include "quant/weight.h"

namespace frugal::bench {
namespace {

using kernels::Isa;
using kernels::Kernels;
using quant::WeightFormat;

// A ring of `count` weight matrices [rows, cols] in one huge-page buffer, filled with random
// finite codes (the values do not change the kernels' speed).
struct WeightRing {
  AlignedBuffer data, scales;
  std::vector<quant::WeightView> views;
  uint64_t bytes_each = 0;
};

// Rings are built once per shape and kept for the run (every benchmark function is called
// several times: to size the iteration count and once per repetition).
const WeightRing& ring_for(WeightFormat f, int64_t rows, int64_t cols) {
  static std::map<std::tuple<int, int64_t, int64_t>, std::unique_ptr<WeightRing>> rings;
  auto& slot = rings[{static_cast<int>(f), rows, cols}];
  if (slot) return *slot;
  slot = std::make_unique<WeightRing>();
  WeightRing& ring = *slot;
  const uint64_t db = quant::weight_data_bytes(f, rows, cols);
  const uint64_t sb = quant::weight_scale_bytes(f, rows, cols);
  ring.bytes_each = db + sb;
  const uint64_t count = kWorkingSetBytes / ring.bytes_each + 1;
  ring.data =
      must(AlignedBuffer::allocate(db * count, nullptr, {.huge_pages = HugePages::kAlways}));
  if (sb > 0) {
    ring.scales =
        must(AlignedBuffer::allocate(sb * count, nullptr, {.huge_pages = HugePages::kAlways}));
  }
  quant::fill_random_weight_codes(f, ring.data.as<uint8_t>(), db * count, 1);
  for (uint64_t i = 0; i < sb * count; ++i) ring.scales.as<uint8_t>()[i] = 120 + (i % 8);
  for (uint64_t i = 0; i < count; ++i) {
    ring.views.push_back({.format = f,
                          .rows = rows,
                          .cols = cols,
                          .data = ring.data.as<uint8_t>() + i * db,
                          .scales = sb ? ring.scales.as<uint8_t>() + i * sb : nullptr});
  }
  return ring;
}

// Decode: y[1, rows] = x W^T over the ring. Bytes = weight bytes incl. scales.
void BM_Gemv(benchmark::State& state, Isa isa, WeightFormat f, int64_t rows, int64_t cols) {
  const int threads = static_cast<int>(state.range(0));
  const Kernels k = must(Kernels::create({.isa = isa, .pool = pool(threads)}));
  const WeightRing& ring = ring_for(f, rows, cols);
  std::vector<float> x = random_floats(cols), y(static_cast<size_t>(rows));
  size_t i = 0;
  for (auto _ : state) {
    k.matmul(ring.views[i], 1, x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % ring.views.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * ring.bytes_each));
  state.counters["ring_MiB"] = static_cast<double>(ring.views.size() * ring.bytes_each) / (1 << 20);
}

// The kernel's own speed: one [256, 4096] matrix that stays in L2, one thread, rated by CPU time
// (robust when other processes share the machine). Bytes/s here is the decode ceiling of a core,
// to compare with the per-core share of the read bandwidth.
void BM_GemvCached(benchmark::State& state, Isa isa, WeightFormat f) {
  const Kernels k = must(Kernels::create({.isa = isa}));
  const int64_t rows = 256, cols = 4096;
  std::vector<uint8_t> data(quant::weight_data_bytes(f, rows, cols));
  std::vector<uint8_t> scales(quant::weight_scale_bytes(f, rows, cols), 124);
  quant::fill_random_weight_codes(f, data.data(), data.size(), 1);
  const quant::WeightView w{.format = f,
                            .rows = rows,
                            .cols = cols,
                            .data = data.data(),
                            .scales = scales.empty() ? nullptr : scales.data()};
  std::vector<float> x = random_floats(cols), y(rows);
  for (auto _ : state) {
    k.matmul(w, 1, x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (data.size() + scales.size())));
  state.SetItemsProcessed(state.iterations() * rows * cols);  // weights
}

// Token groups and prefill: y[m, rows] = x W^T on one matrix (re-used: compute-bound from
// m ~ 16 on). Items = flops (2 m rows cols), so items/s is flop/s.
void BM_Matmul(benchmark::State& state, Isa isa, WeightFormat f, int64_t rows, int64_t cols) {
  const int threads = static_cast<int>(state.range(0));
  const int64_t m = state.range(1);
  const Kernels k = must(Kernels::create({.isa = isa, .pool = pool(threads)}));
  const WeightRing& ring = ring_for(f, rows, cols);
  // x and y 64-byte aligned, as the model's activations are (arena buffers, rows of 4096 floats).
  const AlignedBuffer x = must(AlignedBuffer::allocate(m * cols * sizeof(float), nullptr));
  const AlignedBuffer y = must(AlignedBuffer::allocate(m * rows * sizeof(float), nullptr));
  const std::vector<float> values = random_floats(m * cols);
  std::memcpy(x.data(), values.data(), values.size() * sizeof(float));
  size_t i = 0;
  for (auto _ : state) {
    k.matmul(ring.views[i], m, x.as<float>(), y.as<float>());
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % ring.views.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 2 * m * rows * cols);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * ring.bytes_each));
}

void register_matmuls(Isa isa) {
  const std::string name(kernels::isa_name(isa));
  struct Case {
    WeightFormat f;
    const char* label;
    int64_t rows, cols;  // V4-Flash shapes: FP8 attention / shared expert, FP4 routed expert
  };
  const Case cases[] = {
      {WeightFormat::kFP8Block, "fp8", 4096, 4096},
      {WeightFormat::kMXFP4, "mxfp4", 2048, 4096},
      {WeightFormat::kBF16, "bf16", 4096, 4096},
      {WeightFormat::kF32, "f32", 4096, 4096},
  };
  for (const Case& c : cases) {
    benchmark::RegisterBenchmark(("BM_Gemv/" + std::string(c.label) + "/" + name).c_str(), BM_Gemv,
                                 isa, c.f, c.rows, c.cols)
        ->ArgName("threads")
        ->Arg(1)
        ->Arg(2)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  for (const Case& c : cases) {
    benchmark::RegisterBenchmark(("BM_GemvCached/" + std::string(c.label) + "/" + name).c_str(),
                                 BM_GemvCached, isa, c.f)
        ->Unit(benchmark::kMicrosecond);
  }
  if (isa == Isa::kScalar) return;  // the scalar oracle is far too slow for big token counts
  for (const Case& c : cases) {
    benchmark::RegisterBenchmark(("BM_Matmul/" + std::string(c.label) + "/" + name).c_str(),
                                 BM_Matmul, isa, c.f, c.rows, c.cols)
        ->ArgNames({"threads", "m"})
        // 1 thread: the token-group / k-lane / tile crossovers (a routed expert gets ~12 tokens
        // of a 512-token chunk, ~48 of a 2,048-token span).
        ->Args({1, 4})
        ->Args({1, 8})
        ->Args({1, 12})
        ->Args({1, 16})
        ->Args({1, 24})
        ->Args({1, 32})
        ->Args({1, 48})
        ->Args({1, 64})
        ->Args({1, 512})
        ->Args({2, 1})
        ->Args({2, 2})
        ->Args({2, 3})
        ->Args({2, 4})
        ->Args({2, 8})
        ->Args({2, 12})
        ->Args({2, 24})
        ->Args({2, 48})
        ->Args({2, 64})
        ->Args({2, 512})
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  // The output head of V4-Flash (bf16 [129280, 4096], 1 GiB): decode reads it once per step for
  // all the sequences of a batch (frugal serve), so its token groups stream from memory.
  benchmark::RegisterBenchmark(("BM_Matmul/bf16_head/" + name).c_str(), BM_Matmul, isa,
                               WeightFormat::kBF16, 129280, 4096)
      ->ArgNames({"threads", "m"})
      ->Args({2, 1})
      ->Args({2, 4})
      ->Args({2, 8})
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace
}  // namespace frugal::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  frugal::bench::register_probes();
  for (frugal::kernels::Isa isa : frugal::kernels::supported_isas()) {
    frugal::bench::register_matmuls(isa);
    frugal::bench::register_ops(isa);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
