// bf16_bench: the many-token matmul on f32 FMAs (MatmulInput::kF32) against the bf16 dot-product
// GEMM (MatmulInput::kBf16Exact, AVX512-BF16) on the V4-Flash FP8 / MXFP4 shapes, with x rounded
// like --act-quant. Both run in the same process, alternated, and are rated against the same-run
// probes (Kernels::fma_peak, Kernels::bf16_dot_peak).
//
//   bf16_bench [--threads N] [--reps R] [--m 48,128,512] [--sweep]
//
// Times are thread CPU time with 1 thread (robust when other processes share the cores), wall
// time with more; each figure is the median of R alternated repetitions. --sweep also runs
// m = 8 .. 64 on two shapes to place the threshold (FRUGAL_BF16_DOT_MIN_TOKENS=1 lets the bf16
// path run below its threshold).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/memory.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "quant/act_quant.h"
#include "quant/weight.h"

namespace {

using frugal::kernels::Kernels;
using frugal::kernels::MatmulInput;
using frugal::quant::WeightFormat;

double now_s(bool cpu) {
  timespec ts;
  clock_gettime(cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Weights in huge pages, as the model places them (v4/weights.cpp): with 4 KiB pages the 64 rows
// of a tile 4 KiB apart touch 64 pages and the run measures the TLB as much as the kernel.
struct Weight {
  frugal::quant::WeightView view;
  frugal::AlignedBuffer data, scales;
};

Weight make_weight(WeightFormat f, int64_t rows, int64_t cols) {
  Weight w;
  const uint64_t db = frugal::quant::weight_data_bytes(f, rows, cols);
  const uint64_t sb = frugal::quant::weight_scale_bytes(f, rows, cols);
  const frugal::AllocOptions huge{.huge_pages = frugal::HugePages::kAlways};
  w.data = std::move(frugal::AlignedBuffer::allocate(db, nullptr, huge)).value();
  w.scales = std::move(frugal::AlignedBuffer::allocate(sb, nullptr, huge)).value();
  frugal::quant::fill_random_weight_codes(f, w.data.as<uint8_t>(), db, 1);
  for (uint64_t i = 0; i < sb; ++i) w.scales.as<uint8_t>()[i] = static_cast<uint8_t>(117 + i % 8);
  w.view = {.format = f, .rows = rows, .cols = cols, .data = w.data.data(),
            .scales = w.scales.as<uint8_t>()};
  return w;
}

// Seconds per call: enough calls for ~0.15 s.
double time_call(const Kernels& k, const Weight& w, int64_t m, const float* x, float* y,
                 MatmulInput in, bool cpu) {
  std::vector<uint16_t> xb(static_cast<size_t>(m * Kernels::bf16_x_stride(w.view.cols)));
  k.matmul(w.view, m, x, y, in, xb);  // warm
  int calls = 0;
  const double t0 = now_s(cpu);
  double t = t0;
  while (calls < 2 || t - t0 < 0.15) {
    k.matmul(w.view, m, x, y, in, xb);
    ++calls;
    t = now_s(cpu);
  }
  return (t - t0) / calls;
}

double probe_rate(const Kernels& k, bool bf16, bool cpu) {
  std::vector<double> r;
  for (int i = 0; i < 5; ++i) {
    const double t0 = now_s(cpu);
    const uint64_t flops = bf16 ? k.bf16_dot_peak(2000000) : k.fma_peak(4000000);
    r.push_back(static_cast<double>(flops) / (now_s(cpu) - t0));
  }
  return median(r);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 5;
  bool sweep = false;
  std::vector<int64_t> ms = {48, 128, 512};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--m" && i + 1 < argc) {
      ms.clear();
      for (char* s = std::strtok(argv[++i], ","); s; s = std::strtok(nullptr, ",")) {
        ms.push_back(std::atoll(s));
      }
    } else if (a == "--sweep") {
      sweep = true;
    } else {
      std::fprintf(stderr, "usage: bf16_bench [--threads N] [--reps R] [--m a,b,c] [--sweep]\n");
      return 2;
    }
  }
  std::unique_ptr<frugal::ThreadPool> pool;
  if (threads > 1) pool = std::move(frugal::ThreadPool::create({.n_threads = threads})).value();
  auto kr = Kernels::create({.pool = pool.get()});
  if (!kr.ok() || !kr->bf16_dot()) {
    std::fprintf(stderr, "bf16_bench: no bf16 dot product here (%s)\n",
                 kr.ok() ? "CPU, ISA or FRUGAL_BF16_DOT" : kr.status().to_string().c_str());
    return 1;
  }
  const Kernels& k = *kr;
  const bool cpu = threads == 1;
  const double fma = probe_rate(k, false, cpu), dot = probe_rate(k, true, cpu);
  std::printf("isa %s, %d thread(s), %s time; per-thread probes: fma_peak %.1f GFLOP/s, "
              "bf16_dot_peak %.1f GFLOP/s (%.2fx); bf16 path from m = %lld (FP8), %lld (MXFP4)\n",
              std::string(frugal::kernels::isa_name(k.isa())).c_str(), threads,
              cpu ? "thread CPU" : "wall", fma * 1e-9, dot * 1e-9, dot / fma,
              static_cast<long long>(k.bf16_dot_min_tokens(WeightFormat::kFP8Block)),
              static_cast<long long>(k.bf16_dot_min_tokens(WeightFormat::kMXFP4)));
  const double fma_all = fma * threads, dot_all = dot * threads;

  struct Shape {
    WeightFormat f;
    const char* name;
    int64_t rows, cols;
  };
  const std::vector<Shape> shapes = {
      {WeightFormat::kFP8Block, "fp8", 2048, 4096},   {WeightFormat::kFP8Block, "fp8", 4096, 2048},
      {WeightFormat::kFP8Block, "fp8", 1024, 4096},   {WeightFormat::kFP8Block, "fp8", 8192, 1024},
      {WeightFormat::kFP8Block, "fp8", 4096, 8192},   {WeightFormat::kMXFP4, "mxfp4", 2048, 4096},
      {WeightFormat::kMXFP4, "mxfp4", 4096, 2048},
  };
  struct Run {
    const Shape* s;
    int64_t m;
  };
  std::vector<Run> runs;
  for (int64_t m : ms) {
    for (const Shape& s : shapes) runs.push_back({&s, m});
  }
  if (sweep) {
    for (int64_t m : {8, 12, 16, 20, 24, 32, 40, 64}) {
      runs.push_back({&shapes[0], m});
      runs.push_back({&shapes[5], m});
    }
  }
  std::printf("| weight [rows, cols] | m | f32 ms | bf16 ms | speed-up | f32 GFLOP/s (%% fma) | "
              "bf16 GFLOP/s (%% fma, %% bf16-dot) |\n|---|---|---|---|---|---|---|\n");
  std::mt19937 rng(1);
  for (const Run& r : runs) {
    const Weight w = make_weight(r.s->f, r.s->rows, r.s->cols);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(r.m * r.s->cols));
    for (float& v : x) v = normal(rng);
    frugal::quant::fp8_simulate(x.data(), static_cast<int64_t>(x.size()), 128);
    std::vector<float> y(static_cast<size_t>(r.m * r.s->rows));
    std::vector<double> tf, tb;
    for (int i = 0; i < reps; ++i) {  // alternated
      tf.push_back(time_call(k, w, r.m, x.data(), y.data(), MatmulInput::kF32, cpu));
      tb.push_back(time_call(k, w, r.m, x.data(), y.data(), MatmulInput::kBf16Exact, cpu));
    }
    const double f = median(tf), b = median(tb);
    const double flop = 2.0 * static_cast<double>(r.m * r.s->rows * r.s->cols);
    std::printf("| %s [%lld, %lld] | %lld | %.3f | %.3f | %.2fx | %.1f (%.0f %%) | %.1f (%.0f %%, "
                "%.0f %%) |\n",
                r.s->name, static_cast<long long>(r.s->rows), static_cast<long long>(r.s->cols),
                static_cast<long long>(r.m), f * 1e3, b * 1e3, f / b, flop / f * 1e-9,
                100.0 * flop / f / fma_all, flop / b * 1e-9, 100.0 * flop / b / fma_all,
                100.0 * flop / b / dot_all);
    std::fflush(stdout);
  }
  return 0;
}
