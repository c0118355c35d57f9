#include "quant/act_quant.h"

#include <cmath>

#include "core/convert.h"
#include "core/status.h"

namespace frugal::quant {
namespace {

float block_amax(const float* x, int64_t n) {
  float a = 0.0f;
  for (int64_t i = 0; i < n; ++i) a = std::fmax(a, std::fabs(x[i]));
  return a;
}

// x / s for a power-of-two s is exact (barring f32 underflow, which e4m3/e2m1 round to 0 anyway),
// so the cast below is the only rounding (§2.A).
uint8_t fp8_code(float v, float s) {
  return f32_to_e4m3(std::fmin(std::fmax(v / s, -kFp8Max), kFp8Max));
}
uint8_t fp4_code(float v, float s) {
  return f32_to_e2m1(std::fmin(std::fmax(v / s, -kFp4Max), kFp4Max));
}

void check_blocks(int64_t n, int64_t block) {
  FRUGAL_CHECK_MSG(block > 0 && n >= 0 && n % block == 0, "block must divide n");
}

}  // namespace

uint8_t fp8_scale_code(float amax) {
  // fl32(1/448) as the reference multiplies by it (not a division by 448).
  constexpr float kInv = 1.0f / kFp8Max;
  return f32_to_e8m0_ceil(std::fmax(amax, kFp8AmaxFloor) * kInv);
}

uint8_t fp4_scale_code(float amax) {
  constexpr float kInv = 1.0f / kFp4Max;
  return f32_to_e8m0_ceil(std::fmax(amax, kFp4AmaxFloor) * kInv);
}

void fp8_simulate(float* x, int64_t n, int64_t block) {
  check_blocks(n, block);
  for (int64_t b = 0; b < n; b += block) {
    const float s = e8m0_to_f32(fp8_scale_code(block_amax(x + b, block)));
    for (int64_t i = b; i < b + block; ++i) x[i] = e4m3_to_f32(fp8_code(x[i], s)) * s;
  }
}

void fp4_simulate(float* x, int64_t n, int64_t block) {
  check_blocks(n, block);
  for (int64_t b = 0; b < n; b += block) {
    const float s = e8m0_to_f32(fp4_scale_code(block_amax(x + b, block)));
    for (int64_t i = b; i < b + block; ++i) x[i] = e2m1_to_f32(fp4_code(x[i], s)) * s;
  }
}

void fp8_quantize(const float* x, int64_t n, int64_t block, uint8_t* codes, uint8_t* scales) {
  check_blocks(n, block);
  for (int64_t b = 0; b < n; b += block) {
    const uint8_t sc = fp8_scale_code(block_amax(x + b, block));
    const float s = e8m0_to_f32(sc);
    scales[b / block] = sc;
    for (int64_t i = b; i < b + block; ++i) codes[i] = fp8_code(x[i], s);
  }
}

void fp8_dequantize(const uint8_t* codes, const uint8_t* scales, int64_t n, int64_t block,
                    float* out) {
  check_blocks(n, block);
  for (int64_t i = 0; i < n; ++i) out[i] = e4m3_to_f32(codes[i]) * e8m0_to_f32(scales[i / block]);
}

void fp4_quantize(const float* x, int64_t n, int64_t block, uint8_t* packed, uint8_t* scales) {
  check_blocks(n, block);
  FRUGAL_CHECK_MSG(n % 2 == 0, "packed FP4 needs an even element count");
  for (int64_t i = 0; i < n / 2; ++i) packed[i] = 0;
  for (int64_t b = 0; b < n; b += block) {
    const uint8_t sc = fp4_scale_code(block_amax(x + b, block));
    const float s = e8m0_to_f32(sc);
    scales[b / block] = sc;
    for (int64_t i = b; i < b + block; ++i) {
      const uint8_t q = fp4_code(x[i], s);
      packed[i >> 1] |= static_cast<uint8_t>((i & 1) ? q << 4 : q);
    }
  }
}

void fp4_dequantize(const uint8_t* packed, const uint8_t* scales, int64_t n, int64_t block,
                    float* out) {
  check_blocks(n, block);
  for (int64_t i = 0; i < n; ++i) {
    out[i] =
        e2m1_to_f32(fp4_get(packed, static_cast<uint64_t>(i))) * e8m0_to_f32(scales[i / block]);
  }
}

}  // namespace frugal::quant
