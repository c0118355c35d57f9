// Scalar V4 ops the op API (kernels/kernels.h) does not have yet, written as the plain oracle a
// vectorised version would be tested against. Activations are f32; nothing allocates.
#pragma once

#include <cstdint>

namespace frugal::kernels::v4ref {

// Sylvester-Hadamard transform of n values (n a power of two) scaled by n^-0.5, in place:
// H[m][k] = (-1)^popcount(m & k) (reference `rotate_activation`, doc §2.4).
void hadamard(float* x, int64_t n);
// Rounds each value to bf16 (round to nearest even) and back, in place.
void round_bf16(float* x, int64_t n);

// Scalar helpers with PyTorch's definitions.
float sigmoid(float x);
float softplus(float x);  // ln(1 + e^x); x itself above 20 (PyTorch's threshold)

}  // namespace frugal::kernels::v4ref
