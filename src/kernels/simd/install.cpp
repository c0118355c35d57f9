// install(): this target's entries in the op table. Compiled per target like every simd/ file;
// it only takes addresses, so the table itself is filled by baseline code paths only after the
// run-time ISA check (kernels.cpp).
#include "kernels/simd/simd.h"
#include "kernels/simd/target.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {

void install(OpTable* t) {
  t->matmul[static_cast<int>(quant::WeightFormat::kF32)] = matmul_f32;
  t->matmul[static_cast<int>(quant::WeightFormat::kBF16)] = matmul_bf16;
  t->matmul[static_cast<int>(quant::WeightFormat::kFP8Block)] = matmul_fp8;
  t->matmul[static_cast<int>(quant::WeightFormat::kMXFP4)] = matmul_mxfp4;
  t->rms_norm = rms_norm;
  t->rope = rope;
  t->softmax = softmax;
  t->attention = attention;
  t->swiglu = swiglu;
  t->sum_squares = sum_squares;
  t->fp8_round = fp8_round;
  t->weighted_sum = weighted_sum;
  t->hc_post = hc_post;
  t->fma_peak = fma_peak;
  t->read_stream = read_stream;
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
