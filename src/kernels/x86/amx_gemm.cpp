// The kAmx level. No AMX tile kernels exist yet: the machines this was developed on expose no AMX
// to the guest (cpuid leaf 7 without AMX bits, XCR0 without tile state), so a tile GEMM could not
// be run or tested. Until one is written and tested, kAmx runs the AVX-512 table unchanged.
#include "kernels/x86/x86.h"

namespace frugal::kernels {

void install_amx(OpTable*) {}

}  // namespace frugal::kernels
