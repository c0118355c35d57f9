// Architectures without SIMD kernels: isa_supported() reports only kScalar, so these are never
// called; they exist so the dispatch code links everywhere.
#include "kernels/op_table.h"

namespace frugal::kernels {

void install_avx2(OpTable*) {}
void install_avx512(OpTable*) {}
void install_amx(OpTable*) {}

}  // namespace frugal::kernels
