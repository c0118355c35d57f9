// Microbenchmarks of the non-GEMM ops at V4-Flash decode sizes (dim 4096, 64 heads of 512, a
// 128-token window plus 512 selected compressed entries, 4 hyper-connection streams).
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench_util.h"
#include "kernels/kernels.h"

namespace frugal::bench {
namespace {

using kernels::Isa;
using kernels::Kernels;

void BM_RmsNorm(benchmark::State& state, Isa isa) {
  const Kernels k = must(Kernels::create({.isa = isa}));
  const int64_t n = 4096;
  std::vector<float> x = random_floats(n), w = random_floats(n), out(n);
  for (auto _ : state) {
    k.rms_norm(x.data(), w.data(), 1, n, 1e-6f, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_Rope(benchmark::State& state, Isa isa) {
  const Kernels k = must(Kernels::create({.isa = isa}));
  std::vector<float> q = random_floats(64 * 512), cs(32), sn(32);
  for (int i = 0; i < 32; ++i) {  // a rotation (repeated in place, it keeps |q| unchanged)
    cs[i] = std::cos(0.1f * static_cast<float>(i));
    sn[i] = std::sin(0.1f * static_cast<float>(i));
  }
  for (auto _ : state) {
    k.rope(q.data(), 64, 512, 64, cs.data(), sn.data(), kernels::RopeDirection::kForward);
    benchmark::DoNotOptimize(q.data());
  }
  state.SetItemsProcessed(state.iterations() * 64 * 64);
}

// Decode attention of one token: 64 heads x 512 dims over 640 entries. Bytes = kv rows read.
void BM_Attention(benchmark::State& state, Isa isa) {
  const int threads = static_cast<int>(state.range(0));
  const Kernels k = must(Kernels::create({.isa = isa, .pool = pool(threads)}));
  const int64_t heads = 64, d = 512, n_kv = 128 + 4096, n_idx = 128 + 512;
  std::vector<float> q = random_floats(heads * d, 0.05f), kv = random_floats(n_kv * d),
                     sink = random_floats(heads), out(heads * d);
  std::vector<int32_t> idx(n_idx);
  for (int64_t i = 0; i < n_idx; ++i) idx[i] = static_cast<int32_t>((i * 7) % n_kv);
  const kernels::AttentionArgs a{.q = q.data(),
                                 .kv = kv.data(),
                                 .idx = idx.data(),
                                 .sink = sink.data(),
                                 .out = out.data(),
                                 .m = 1,
                                 .n_heads = heads,
                                 .head_dim = d,
                                 .n_kv = n_kv,
                                 .n_idx = n_idx,
                                 .scale = 0.044194174f};
  for (auto _ : state) {
    k.attention(a);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * n_idx * d * 4);
  state.SetItemsProcessed(state.iterations() * 4 * heads * n_idx * d);  // flops
}

void BM_Swiglu(benchmark::State& state, Isa isa) {
  const Kernels k = must(Kernels::create({.isa = isa}));
  const int64_t n = 2048;
  std::vector<float> g = random_floats(n, 4.0f), u = random_floats(n, 4.0f), out(n);
  for (auto _ : state) {
    k.swiglu(g.data(), u.data(), n, 10.0f, 0.3f, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// Softmax of one row of 640 scores (the attention window plus the selected entries).
void BM_Softmax(benchmark::State& state, Isa isa) {
  const Kernels k = must(Kernels::create({.isa = isa}));
  const int64_t n = 640;
  // In place: from the second iteration on it normalises its own output (values in (0, 1]),
  // which costs the same.
  std::vector<float> x = random_floats(n, 4.0f);
  for (auto _ : state) {
    k.softmax(x.data(), 1, n);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// Hyper-connection post-mix of one token: 4 streams of 4096.
void BM_HcPost(benchmark::State& state, Isa isa) {
  const Kernels k = must(Kernels::create({.isa = isa}));
  const int64_t hc = 4, dim = 4096;
  std::vector<float> y = random_floats(dim), x = random_floats(hc * dim), post = random_floats(hc),
                     comb = random_floats(hc * hc), out(hc * dim);
  const kernels::HcPostArgs a{.y = y.data(),
                              .x = x.data(),
                              .post = post.data(),
                              .comb = comb.data(),
                              .out = out.data(),
                              .m = 1,
                              .hc_mult = hc,
                              .dim = dim};
  for (auto _ : state) {
    k.hc_post(a);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * (2 * hc + 1) * dim * 4);
}

void BM_HcPre(benchmark::State& state, Isa isa) {
  const Kernels k = must(Kernels::create({.isa = isa}));
  const int64_t hc = 4, dim = 4096, n_mix = (2 + hc) * hc;
  std::vector<float> x = random_floats(hc * dim), fn = random_floats(n_mix * hc * dim, 0.01f),
                     base = random_floats(n_mix), scale = {0.5f, 0.5f, 0.5f}, mixes(n_mix), h(dim),
                     post(hc), comb(hc * hc);
  const kernels::HcPreArgs a{.x = x.data(),
                             .fn = {.format = quant::WeightFormat::kF32,
                                    .rows = n_mix,
                                    .cols = hc * dim,
                                    .data = fn.data()},
                             .base = base.data(),
                             .scale = scale.data(),
                             .mixes = mixes.data(),
                             .h = h.data(),
                             .post = post.data(),
                             .comb = comb.data(),
                             .m = 1,
                             .hc_mult = hc,
                             .dim = dim};
  for (auto _ : state) {
    k.hc_pre(a);
    benchmark::DoNotOptimize(h.data());
  }
  state.SetBytesProcessed(state.iterations() * n_mix * hc * dim * 4);
}

void BM_TopK(benchmark::State& state) {
  const Kernels k = must(Kernels::create({.isa = Isa::kScalar}));
  const int64_t n = state.range(0), kk = state.range(1);
  std::vector<float> x = random_floats(n);
  std::vector<int32_t> idx(kk);
  for (auto _ : state) {
    k.top_k(x.data(), n, kk, idx.data(), nullptr);
    benchmark::DoNotOptimize(idx.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

}  // namespace

void register_ops(Isa isa) {
  std::string s = "/";
  s += kernels::isa_name(isa);
  benchmark::RegisterBenchmark(("BM_RmsNorm" + s).c_str(), BM_RmsNorm, isa);
  benchmark::RegisterBenchmark(("BM_Rope" + s).c_str(), BM_Rope, isa);
  benchmark::RegisterBenchmark(("BM_Attention" + s).c_str(), BM_Attention, isa)
      ->ArgName("threads")
      ->Arg(1)
      ->Arg(2)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark(("BM_Swiglu" + s).c_str(), BM_Swiglu, isa);
  benchmark::RegisterBenchmark(("BM_Softmax" + s).c_str(), BM_Softmax, isa);
  benchmark::RegisterBenchmark(("BM_HcPost" + s).c_str(), BM_HcPost, isa);
  benchmark::RegisterBenchmark(("BM_HcPre" + s).c_str(), BM_HcPre, isa)
      ->Unit(benchmark::kMicrosecond);
  if (isa == Isa::kScalar) {
    benchmark::RegisterBenchmark("BM_TopK", BM_TopK)->Args({256, 6})->Args({16384, 512});
  }
}

}  // namespace frugal::bench
