// Instruction-set levels the kernels are built for, and what this CPU supports (cpuid + the OS
// state in XCR0, plus the Linux permission request that AMX tile data needs).
//
// Levels are cumulative: kAvx512 includes AVX2, kAmx includes AVX-512.
//   kScalar  portable C++ (the oracle)
//   kAvx2    AVX2 + FMA + F16C (any x86-64 desktop since 2013)
//   kAvx512  AVX-512 F/BW/DQ/VL
//   kAmx     AVX-512 + AVX512-BF16 + AMX-TILE/AMX-BF16 (prefill GEMM on tiles)
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace frugal::kernels {

enum class Isa : uint8_t { kScalar, kAvx2, kAvx512, kAmx };
inline constexpr Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx};

std::string_view isa_name(Isa isa);  // "scalar", "avx2", "avx512", "amx"
std::optional<Isa> parse_isa(std::string_view name);

// Whether this CPU and OS can run kernels of `isa`. The first query for kAmx asks Linux for the
// AMX tile-data permission (arch_prctl ARCH_REQ_XCOMP_PERM); it is process-wide and idempotent.
bool isa_supported(Isa isa);
// The highest supported level.
Isa best_isa();
// Every supported level, lowest first (kScalar always).
std::vector<Isa> supported_isas();

// The level named by the environment variable FRUGAL_ISA, or best_isa() when it is unset or empty.
// An unknown name or a level this CPU cannot run is an error naming the variable.
Result<Isa> isa_from_env();

}  // namespace frugal::kernels
