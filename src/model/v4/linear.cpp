// mirrors linear() of the reference model.py (architecture doc §2.A, "Linear layers"): which
// activations are rounded to FP8 before a matmul when the model runs with the deployed numerics.
#include <algorithm>

#include "model/v4/layers.h"
#include "quant/act_quant.h"

namespace frugal::v4 {

namespace {

bool quantized_weight(const quant::WeightView& w) {
  return w.format == quant::WeightFormat::kFP8Block || w.format == quant::WeightFormat::kMXFP4;
}

}  // namespace

void linear(const Ctx& ctx, const quant::WeightView& w, int64_t m, const float* x, float* y) {
  if (!ctx.act_quant || !quantized_weight(w)) {
    ctx.k.matmul(w, m, x, y);
    return;
  }
  // act_quant(x, 128, "ue8m0"): e4m3 codes times a power-of-two scale per 1x128 block, which are
  // exact in f32, so rounding a copy of x and running the f32 matmul on it multiplies the same
  // values fp8_gemm / fp4_gemm do; only the f32 summation order differs. Rows go in pieces that
  // fit the scratch (Scratch::aq holds aq_rows rows of the widest input). Those values are exact
  // in bf16 too, so the matmul may run on bf16 dot products (MatmulInput::kBf16Exact: where the
  // CPU has them, for enough tokens; the products stay exact).
  const int64_t rows = std::max<int64_t>(1, ctx.s.aq_rows * ctx.s.aq_cols / w.cols);
  for (int64_t r0 = 0; r0 < m; r0 += rows) {
    const int64_t p = std::min(rows, m - r0);
    ctx.k.fp8_round(x + r0 * w.cols, p * w.cols, quant::kActQuantBlock, ctx.s.aq);
    ctx.k.matmul(w, p, ctx.s.aq, y + r0 * w.rows, kernels::MatmulInput::kBf16Exact,
                 ctx.s.aq_bf16());
  }
}

Status check_act_quant(const DeepSeekV4Config& c) {
  const struct {
    const char* name;
    int64_t value;
  } inputs[] = {{"hidden_size", c.dim},
                {"q_lora_rank", c.q_lora_rank},
                {"o_groups * o_lora_rank", c.o_groups * c.o_lora_rank},
                {"moe_intermediate_size", c.moe_inter_dim}};
  for (const auto& in : inputs) {
    if (in.value % quant::kActQuantBlock != 0) {
      return invalid_argument("--act-quant rounds the inputs of the FP8/FP4 linears in blocks of " +
                              std::to_string(quant::kActQuantBlock) + ", but " + in.name + " = " +
                              std::to_string(in.value) + " is not a multiple of it");
    }
  }
  return ok_status();
}

}  // namespace frugal::v4
