#include "kernels/isa.h"

#include <cstdlib>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace frugal::kernels {
namespace {

struct CpuFeatures {
  bool avx2 = false;    // AVX2 + FMA + F16C, with YMM state enabled by the OS
  bool avx512 = false;  // F + BW + DQ + VL, with opmask/ZMM state enabled by the OS
  bool amx = false;     // AVX512-BF16 + AMX-TILE + AMX-BF16, tile state enabled and permitted
  bool neon = false;    // aarch64 Advanced SIMD (ASIMD) with FP, as the kernel reports it
  bool bf16_dot = false;  // AVX-512 (as above) + AVX512-BF16 (vdpbf16ps, vcvtne2ps2bf16)
};

#if defined(__x86_64__)
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  // xgetbv with ecx = 0, encoded as bytes so the baseline build needs no -mxsave.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux: AMX tile data is off until the process asks for it (kernel 5.16+).
bool request_amx_permission() {
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1,
             f16c = (c >> 29) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;         // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  const bool tile_state = (xcr0 & 0x60000) == 0x60000;  // XTILECFG, XTILEDATA
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = (b >> 5) & 1;
  const bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
             avx512vl = (b >> 31) & 1;
  const bool amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  const bool avx512_bf16 = (a1 >> 5) & 1;

  f.avx2 = ymm_state && avx2 && fma && f16c;
  f.avx512 = f.avx2 && zmm_state && avx512f && avx512dq && avx512bw && avx512vl;
  f.bf16_dot = f.avx512 && avx512_bf16;
  f.amx = f.avx512 && avx512_bf16 && amx_tile && amx_bf16 && tile_state && request_amx_permission();
  return f;
}
#elif defined(__aarch64__) && defined(__linux__)
// ASIMD and FP are mandatory in Armv8-A Linux userspace, but the kernel says so in AT_HWCAP and a
// CPU without them (or a kernel that hides them) must not get the NEON kernels.
CpuFeatures detect() {
  CpuFeatures f;
  const unsigned long hwcap = getauxval(AT_HWCAP);
  f.neon = (hwcap & HWCAP_ASIMD) != 0 && (hwcap & HWCAP_FP) != 0;
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

const CpuFeatures& features() {
  static const CpuFeatures f = detect();  // immutable after the first call
  return f;
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAmx:
      return "amx";
    case Isa::kNeon:
      return "neon";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa isa : kAllIsas) {
    if (isa_name(isa) == name) return isa;
  }
  return std::nullopt;
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return features().avx2;
    case Isa::kAvx512:
      return features().avx512;
    case Isa::kAmx:
      return features().amx;
    case Isa::kNeon:
      return features().neon;
  }
  return false;
}

bool cpu_has_bf16_dot() { return features().bf16_dot; }

Isa best_isa() {
  Isa best = Isa::kScalar;
  for (Isa isa : kAllIsas) {
    if (isa_supported(isa)) best = isa;
  }
  return best;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas) {
    if (isa_supported(isa)) out.push_back(isa);
  }
  return out;
}

Result<Isa> isa_from_env() {
  const char* env = std::getenv("FRUGAL_ISA");
  if (env == nullptr || *env == '\0') return best_isa();
  const std::optional<Isa> isa = parse_isa(env);
  if (!isa) {
    return invalid_argument("FRUGAL_ISA='" + std::string(env) +
                            "' is not one of scalar, avx2, avx512, amx, neon");
  }
  if (!isa_supported(*isa)) {
    return unsupported("FRUGAL_ISA=" + std::string(env) + ": this CPU (or OS) cannot run " +
                       std::string(env) + " kernels; the best it supports is " +
                       std::string(isa_name(best_isa())));
  }
  return *isa;
}

}  // namespace frugal::kernels
