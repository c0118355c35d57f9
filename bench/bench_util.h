// Shared pieces of the kernel benchmarks: thread pools by size, random data, the probes that
// measure the machine's limits in the same run (read bandwidth, FMA peak).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "core/memory.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/isa.h"
#include "quant/weight_view.h"

namespace frugal::bench {

// Working sets of the memory-bound benchmarks: above the last-level cache this VM reports
// (260 MiB) with room to spare, so each byte is read from DRAM.
inline constexpr uint64_t kWorkingSetBytes = uint64_t{640} << 20;

template <typename T>
T must(Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "bench: %s\n", r.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

// A pool of n threads, created on first use and kept for the run (n == 1: no pool).
ThreadPool* pool(int n);

std::vector<float> random_floats(int64_t n, float sd = 1.0f);

void register_probes();               // BM_ReadBandwidth, BM_FmaPeak
void register_ops(kernels::Isa isa);  // norms, rope, attention, top-k, swiglu, hyper-connections

}  // namespace frugal::bench
