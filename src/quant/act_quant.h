// The low-precision activation formats of DeepSeek-V4, exactly as the reference simulates them
// (architecture doc §2.A: `act_quant` and `fp4_act_quant` in the reference kernel.py), applied to
// f32 values (§2.B). Two families:
//
//  - *_simulate: in place, x <- dequant(quant(x)); what the reference writes back into the window
//    KV, the compressed KV entries (FP8, block 64) and the indexer q / keys (FP4, block 32).
//  - *_quantize / *_dequantize: the same rounding, kept as codes + e8m0 scales (storage formats,
//    e.g. an FP8 KV cache). dequantize(quantize(x)) equals simulate(x) bit for bit.
//
// Scale rule (power of two, "ue8m0"), per block of `block` consecutive elements, in f32:
//   FP8: a = max(amax, 1e-4),      s = 2^ceil(log2(a * fl32(1/448))),  q = e4m3(clamp(x/s, +-448))
//   FP4: a = max(amax, 6*2^-126),  s = 2^ceil(log2(a * fl32(1/6))),    q = e2m1(clamp(x/s, +-6))
// Casts round to nearest, ties to even (core/convert.h). An all-zero FP8 block gets s = 2^-22.
#pragma once

#include <cstdint>

namespace frugal::quant {

inline constexpr float kFp8Max = 448.0f;
// Block of the FP8 rounding before the reference's FP8 / FP4 GEMMs (`act_quant(x, block_size)` in
// linear(), block_size = 128).
inline constexpr int64_t kActQuantBlock = 128;
inline constexpr float kFp4Max = 6.0f;
inline constexpr float kFp8AmaxFloor = 1e-4f;
inline constexpr float kFp4AmaxFloor = 6.0f * 0x1p-126f;

// e8m0 code of the block scale for a block whose largest magnitude is `amax`.
uint8_t fp8_scale_code(float amax);
uint8_t fp4_scale_code(float amax);

// x[n] in place; `block` must divide n (the reference requires it; our callers use fixed dims).
void fp8_simulate(float* x, int64_t n, int64_t block);
void fp4_simulate(float* x, int64_t n, int64_t block = 32);

// x[n] -> codes[n] (e4m3) + scales[n / block] (e8m0).
void fp8_quantize(const float* x, int64_t n, int64_t block, uint8_t* codes, uint8_t* scales);
void fp8_dequantize(const uint8_t* codes, const uint8_t* scales, int64_t n, int64_t block,
                    float* out);

// x[n] (n even) -> packed e2m1 [n / 2] (low nibble = even element) + scales[n / block].
void fp4_quantize(const float* x, int64_t n, int64_t block, uint8_t* packed, uint8_t* scales);
void fp4_dequantize(const uint8_t* packed, const uint8_t* scales, int64_t n, int64_t block,
                    float* out);

}  // namespace frugal::quant
