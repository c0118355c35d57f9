#include "kernels/ref/v4_ops.h"

#include <cmath>

#include "core/convert.h"

namespace frugal::kernels::v4ref {

void hadamard(float* x, int64_t n) {
  for (int64_t h = 1; h < n; h *= 2) {  // butterflies: natural (Sylvester) order
    for (int64_t i = 0; i < n; i += 2 * h) {
      for (int64_t j = i; j < i + h; ++j) {
        const float a = x[j];
        const float b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(n));
  for (int64_t k = 0; k < n; ++k) x[k] *= scale;
}

void round_bf16(float* x, int64_t n) {
  for (int64_t k = 0; k < n; ++k) x[k] = bf16_to_f32(f32_to_bf16(x[k]));
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

}  // namespace frugal::kernels::v4ref
