#include "bench_util.h"

#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "kernels/kernels.h"

namespace frugal::bench {
namespace {

// The best kernel level of this CPU: its probes are the ones the kernels are rated against.
const kernels::Kernels& probe_kernels() {
  static const kernels::Kernels k = must(kernels::Kernels::create({.isa = kernels::best_isa()}));
  return k;
}

// The machine's read roofline: a huge-page-advised buffer above the LLC, read by `threads`
// threads of the same kind of pool the kernels use, each reading its 1 MiB work items with
// Kernels::read_stream (four streams of the widest loads), as frugal bench does.
void BM_ReadBandwidth(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  constexpr uint64_t kBytes = kWorkingSetBytes;
  constexpr int64_t kChunkWords = int64_t{1} << 17;  // 1 MiB per work item
  static AlignedBuffer buf = [] {
    AlignedBuffer b =
        must(AlignedBuffer::allocate(kBytes, nullptr, {.huge_pages = HugePages::kAlways}));
    std::memset(b.data(), 1, kBytes);
    return b;
  }();
  const auto* p = buf.as<const uint64_t>();
  const int64_t n_chunks = static_cast<int64_t>(kBytes / 8) / kChunkWords;
  ThreadPool* tp = pool(threads);
  const kernels::Kernels& k = probe_kernels();
  for (auto _ : state) {
    uint64_t sums[64] = {};
    auto body = [&](int64_t b, int64_t e, int t) {
      for (int64_t c = b; c < e; ++c)
        sums[t & 63] |= k.read_stream(p + c * kChunkWords, kChunkWords);
    };
    if (tp != nullptr) {
      tp->parallel_for(n_chunks, 1, body);
    } else {
      body(0, n_chunks, 0);
    }
    benchmark::DoNotOptimize(sums);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBytes));
}

// The f32 FMA peak of the best kernel level (Kernels::fma_peak), per thread count. Items = flops.
void BM_FmaPeak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  constexpr int64_t kIters = 1 << 22;
  ThreadPool* tp = pool(threads);
  const kernels::Kernels& k = probe_kernels();
  uint64_t flops = 0;
  for (auto _ : state) {
    uint64_t done[64] = {};
    auto body = [&](int64_t b, int64_t e, int t) {
      for (int64_t i = b; i < e; ++i) done[t & 63] += k.fma_peak(kIters);
    };
    if (tp != nullptr) {
      tp->parallel_for(threads, 1, body);
    } else {
      body(0, 1, 0);
    }
    for (uint64_t d : done) flops += d;
  }
  state.SetItemsProcessed(static_cast<int64_t>(flops));
  state.SetLabel(std::string(kernels::isa_name(k.isa())) + " f32 fma");
}

}  // namespace

ThreadPool* pool(int n) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  if (n <= 1) return nullptr;
  auto& p = pools[n];
  if (!p) p = must(ThreadPool::create({.n_threads = n, .pin = true}));
  return p.get();
}

std::vector<float> random_floats(int64_t n, float sd) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = normal(rng);
  return v;
}

void register_probes() {
  benchmark::RegisterBenchmark("BM_ReadBandwidth", BM_ReadBandwidth)
      ->ArgName("threads")
      ->Arg(1)
      ->Arg(2)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_FmaPeak", BM_FmaPeak)
      ->ArgName("threads")
      ->Arg(1)
      ->Arg(2)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace frugal::bench
