// Instruction-set levels the kernels are built for, and what this CPU supports (x86: cpuid + the
// OS state in XCR0, plus the Linux permission request that AMX tile data needs; aarch64: the
// kernel's hardware capability bits, getauxval(AT_HWCAP)).
//
// x86 levels are cumulative: kAvx512 includes AVX2, kAmx includes AVX-512. kNeon stands alone:
// it is never supported on x86, and the x86 levels are never supported on aarch64, so the enum's
// order is not an order of capability across architectures (isa_includes says what a level
// runs).
//   kScalar  portable C++ (the oracle), every architecture
//   kAvx2    AVX2 + FMA + F16C (any x86-64 desktop since 2013)
//   kAvx512  AVX-512 F/BW/DQ/VL
//   kAmx     AVX-512 + AVX512-BF16 + AMX-TILE/AMX-BF16 (prefill GEMM on tiles)
//   kNeon    aarch64 Advanced SIMD (ASIMD: 4 f32 lanes, FMA, f16 conversions)
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace frugal::kernels {

enum class Isa : uint8_t { kScalar, kAvx2, kAvx512, kAmx, kNeon };
inline constexpr Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx, Isa::kNeon};

std::string_view isa_name(Isa isa);  // "scalar", "avx2", "avx512", "amx", "neon"
std::optional<Isa> parse_isa(std::string_view name);

// Whether running at level `isa` includes the kernels of `level`: every level includes kScalar,
// the x86 levels include the x86 levels below them, kNeon includes only itself. The dispatch
// installs the tables of every level the chosen one includes, lowest first (not `isa >= level`,
// which would make kNeon include the x86 levels).
constexpr bool isa_includes(Isa isa, Isa level) {
  if (level == Isa::kScalar || isa == level) return true;
  const auto x86 = [](Isa i) { return i == Isa::kAvx2 || i == Isa::kAvx512 || i == Isa::kAmx; };
  return x86(isa) && x86(level) && level < isa;
}

// Whether this CPU and OS can run kernels of `isa`. The first query for kAmx asks Linux for the
// AMX tile-data permission (arch_prctl ARCH_REQ_XCOMP_PERM); it is process-wide and idempotent.
bool isa_supported(Isa isa);
// Whether this CPU and OS run AVX512-BF16 (cpuid leaf 7 subleaf 1 EAX bit 5) on top of the
// AVX-512 level: the bf16 dot product (vdpbf16ps) of Kernels::matmul with MatmulInput::kBf16Exact.
bool cpu_has_bf16_dot();
// The highest supported level (the last supported one in kAllIsas).
Isa best_isa();
// Every supported level in kAllIsas order, lowest first (kScalar always).
std::vector<Isa> supported_isas();

// The level named by the environment variable FRUGAL_ISA, or best_isa() when it is unset or empty.
// An unknown name or a level this CPU cannot run is an error naming the variable.
Result<Isa> isa_from_env();

}  // namespace frugal::kernels
