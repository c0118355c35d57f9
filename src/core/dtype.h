// Element types frugal stores and reads.
//
// Sub-byte and scale types follow the official DeepSeek-V4 checkpoint (architecture doc §3.2):
// FP8 e4m3fn weights with e8m0 (power-of-two) scales, and FP4 e2m1 packed two per byte with the
// low nibble holding the even element. In the checkpoint the packed FP4 tensors are declared I8 of
// shape [out, in/2]; the loader reinterprets them as kFP4E2M1 of shape [out, in].
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace frugal {

enum class DType : uint8_t {
  kF32,
  kBF16,
  kF16,
  kF8E4M3,   // e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa; no inf; 0x7f/0xff are NaN
  kF8E8M0,   // e8m0fnu: unsigned exponent only, value 2^(e-127); 0xff is NaN
  kFP4E2M1,  // e2m1: 1 sign, 2 exponent (bias 1), 1 mantissa; two per byte, low nibble first
  kI8,
  kU8,
  kI32,
  kI64,
};

inline constexpr int kNumDTypes = 10;

// Size of one element in bits (4 for kFP4E2M1).
int dtype_bits(DType t);

// Bytes needed for n elements (packed types round up to whole bytes).
uint64_t dtype_bytes(DType t, uint64_t n);

// Our own short name: "f32", "bf16", "f16", "f8_e4m3", "f8_e8m0", "fp4_e2m1", "i8", ...
std::string_view dtype_name(DType t);

// The safetensors header spelling ("F32", "BF16", "F8_E4M3", "F8_E8M0", "I8", "I64", ...).
// kFP4E2M1 has no safetensors spelling: checkpoints store it as "I8".
std::optional<std::string_view> dtype_safetensors_name(DType t);
std::optional<DType> dtype_from_safetensors_name(std::string_view name);

}  // namespace frugal
