// Throughput of the vector instructions the decode kernels are built from, as a ratio to the
// 512-bit FMA measured in the same benchmark (2 per cycle on cores with two 512-bit FMA units, so
// ratio 0.5 = 1 per cycle). docs/BENCHMARKS.md uses these figures to say what bounds the MXFP4 and
// FP8 GEMVs (uops per weight on the two 512-bit ports) and why bf16 dot products do not pay here.
//
// Each loop is inline assembly (12 independent destinations per step, inputs never written, so
// nothing is latency-bound or folded away); the assembler takes every instruction whatever the
// compiler flags, and a benchmark whose instruction the CPU lacks is skipped at run time.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace frugal::bench {
namespace {

#define FRUGAL_X12(INSN) \
  INSN(0) INSN(1) INSN(2) INSN(3) INSN(4) INSN(5) INSN(6) INSN(7) INSN(8) INSN(9) INSN(10) INSN(11)
#define FRUGAL_CLOBBERS                                                                    \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
      "xmm11", "xmm14", "xmm15"

// Runs `steps` steps of 12 instructions (24 for the pairs).
using Loop = void (*)(int64_t steps);

#define FRUGAL_LOOP(name, insn)                                                            \
  void name(int64_t steps) {                                                               \
    asm volatile("vpxord %%zmm14, %%zmm14, %%zmm14\n\tvpxord %%zmm15, %%zmm15, %%zmm15" :: \
                     : "xmm14", "xmm15");                                                  \
    for (int64_t i = 0; i < steps; ++i) asm volatile(FRUGAL_X12(insn)::: FRUGAL_CLOBBERS); \
  }

#define I_FMA(d) "vfmadd231ps %%zmm14, %%zmm15, %%zmm" #d "\n\t"
#define I_PERMPS(d) "vpermps %%zmm14, %%zmm15, %%zmm" #d "\n\t"
#define I_SRLD(d) "vpsrld $4, %%zmm15, %%zmm" #d "\n\t"
#define I_CVTPH(d) "vcvtph2ps %%ymm15, %%zmm" #d "\n\t"
#define I_PERMB(d) "vpermb %%zmm14, %%zmm15, %%zmm" #d "\n\t"
#define I_DPBF16(d) "vdpbf16ps %%zmm14, %%zmm15, %%zmm" #d "\n\t"
#define I_FMAPH(d) "vfmadd231ph %%zmm14, %%zmm15, %%zmm" #d "\n\t"
#define I_PERM_FMA(d) \
  "vpermps %%zmm14, %%zmm15, %%zmm" #d "\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm" #d "\n\t"

#define I_CVTPH_FMA(d) \
  "vcvtph2ps %%ymm15, %%zmm" #d "\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm" #d "\n\t"

FRUGAL_LOOP(loop_fma, I_FMA)
FRUGAL_LOOP(loop_permps, I_PERMPS)
FRUGAL_LOOP(loop_srld, I_SRLD)
FRUGAL_LOOP(loop_cvtph, I_CVTPH)
FRUGAL_LOOP(loop_permb, I_PERMB)
FRUGAL_LOOP(loop_dpbf16, I_DPBF16)
FRUGAL_LOOP(loop_fmaph, I_FMAPH)
FRUGAL_LOOP(loop_perm_fma, I_PERM_FMA)
FRUGAL_LOOP(loop_cvtph_fma, I_CVTPH_FMA)

double steps_per_ns(Loop loop, int64_t steps) {
  const auto t0 = std::chrono::steady_clock::now();
  loop(steps);
  const auto t1 = std::chrono::steady_clock::now();
  return static_cast<double>(steps) / std::chrono::duration<double, std::nano>(t1 - t0).count();
}

enum class Need { kAvx512f, kVbmi, kBf16, kFp16 };

// __builtin_cpu_supports takes string literals only.
bool cpu_has(Need n) {
  if (!__builtin_cpu_supports("avx512f")) return false;
  switch (n) {
    case Need::kAvx512f:
      return true;
    case Need::kVbmi:
      return __builtin_cpu_supports("avx512vbmi");
    case Need::kBf16:
      return __builtin_cpu_supports("avx512bf16");
    case Need::kFp16:
      return __builtin_cpu_supports("avx512fp16");
  }
  return false;
}

// Alternates the instruction's loop with the FMA loop; counters: instructions per ns and
// "per_fma", the instruction's throughput over the FMA's (instructions of the pair count as one).
void BM_Insn(benchmark::State& state, Loop loop, Need need) {
  if (!cpu_has(need)) {
    state.SkipWithError("this CPU lacks the instruction");
    return;
  }
  constexpr int64_t kSteps = 1 << 20;
  double insn = 0.0, fma = 0.0;
  for (auto _ : state) {
    insn += steps_per_ns(loop, kSteps);
    fma += steps_per_ns(loop_fma, kSteps);
  }
  state.counters["per_ns"] = 12.0 * insn / static_cast<double>(state.iterations());
  state.counters["per_fma"] = insn / fma;
}

void register_insns() {
  struct Case {
    const char* name;
    Loop loop;
    Need need;
  };
  const Case cases[] = {
      {"vfmadd231ps", loop_fma, Need::kAvx512f},
      {"vpermps", loop_permps, Need::kAvx512f},
      {"vpsrld", loop_srld, Need::kAvx512f},
      {"vcvtph2ps", loop_cvtph, Need::kAvx512f},
      {"vpermb", loop_permb, Need::kVbmi},
      {"vdpbf16ps", loop_dpbf16, Need::kBf16},
      {"vfmadd231ph", loop_fmaph, Need::kFp16},
      {"vpermps+vfmadd231ps", loop_perm_fma, Need::kAvx512f},
      {"vcvtph2ps+vfmadd231ps", loop_cvtph_fma, Need::kAvx512f},
  };
  for (const Case& c : cases) {
    benchmark::RegisterBenchmark(("BM_Insn/" + std::string(c.name)).c_str(), BM_Insn, c.loop,
                                 c.need)
        ->Unit(benchmark::kMillisecond);
  }
}

const bool registered = (register_insns(), true);

}  // namespace
}  // namespace frugal::bench
