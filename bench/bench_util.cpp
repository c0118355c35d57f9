#include "bench_util.h"

#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>

#include "core/convert.h"

namespace frugal::bench {
namespace {

// Sum of 64-bit words in four independent chains (vectorised by the compiler): a read-only
// stream whose speed is the memory's, not the core's.
uint64_t read_sum(const uint64_t* p, int64_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t i = 0; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

// The machine's read roofline: a huge-page-advised buffer above the LLC, read by `threads`
// threads of the same kind of pool the kernels use, each reading its 1 MiB work items as four
// streams of 64-byte loads (AVX-512 when the CPU has it; else a baseline loop).
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
  const bool wide = kernels::isa_supported(kernels::Isa::kAvx512);
  for (auto _ : state) {
    uint64_t sums[64] = {};
    auto body = [&](int64_t b, int64_t e, int t) {
      for (int64_t c = b; c < e; ++c) {
        sums[t & 63] += wide ? read_stream_avx512(p + c * kChunkWords, kChunkWords)
                             : read_sum(p + c * kChunkWords, kChunkWords);
      }
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

// The FMA peak of the widest vector ISA this CPU has, per thread count. Items = flops.
void BM_FmaPeak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const bool avx512 = kernels::isa_supported(kernels::Isa::kAvx512);
  constexpr int64_t kIters = 1 << 22;
  ThreadPool* tp = pool(threads);
  uint64_t lanes_fmas = 0;
  for (auto _ : state) {
    uint64_t done[64] = {};
    auto body = [&](int64_t b, int64_t e, int t) {
      for (int64_t i = b; i < e; ++i) {
        done[t & 63] += avx512 ? fma_peak_avx512(kIters) : fma_peak_avx2(kIters);
      }
    };
    if (tp != nullptr) {
      tp->parallel_for(threads, 1, body);
    } else {
      body(0, 1, 0);
    }
    for (uint64_t d : done) lanes_fmas += d;
  }
  state.SetItemsProcessed(static_cast<int64_t>(2 * lanes_fmas));
  state.SetLabel(avx512 ? "avx512 f32 fma" : "avx2 f32 fma");
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

void fill_random_codes(quant::WeightFormat f, uint8_t* p, uint64_t n) {
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (uint64_t i = 0; i < n; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    p[i] = static_cast<uint8_t>(s);
  }
  if (f == quant::WeightFormat::kFP8Block) {
    for (uint64_t i = 0; i < n; ++i) {
      if ((p[i] & 0x7f) == 0x7f) p[i] = 0x3e;
    }
  } else if (f == quant::WeightFormat::kBF16) {
    auto* h = reinterpret_cast<uint16_t*>(p);
    for (uint64_t i = 0; i < n / 2; ++i)
      h[i] = f32_to_bf16(static_cast<float>(h[i] % 1000) * 1e-3f);
  } else if (f == quant::WeightFormat::kF32) {
    auto* v = reinterpret_cast<float*>(p);
    for (uint64_t i = 0; i < n / 4; ++i) v[i] = static_cast<float>(i % 1000) * 1e-3f;
  }
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
