// Weight matrices as data: one struct describes a Linear weight [out, in] in any of the formats
// the official DeepSeek-V4 checkpoints use (architecture doc §3.2), plus its reference
// dequantization (§2.B) and the quantizers that write those formats (synthetic checkpoints, tests).
//
//   kF32        f32 [rows, cols]
//   kBF16       bf16 bits [rows, cols]
//   kFP8Block   e4m3fn codes [rows, cols] + e8m0 scale per 128x128 block,
//               scales [ceil(rows/128), ceil(cols/128)]; value = e4m3 * 2^(s - 127)
//   kMXFP4      e2m1 packed two per byte [rows, cols/2] (low nibble = even element) + e8m0 scale
//               per 1x32 along the input dim, scales [rows, ceil(cols/32)]; value = e2m1 * 2^(s -
//               127)
#pragma once

#include <cstdint>
#include <string_view>

#include "core/status.h"
#include "quant/weight_view.h"

namespace frugal::quant {

std::string_view weight_format_name(WeightFormat f);

// Bytes of the data array and of the scale array (0 when the format has no scales).
uint64_t weight_data_bytes(WeightFormat f, int64_t rows, int64_t cols);
uint64_t weight_scale_bytes(WeightFormat f, int64_t rows, int64_t cols);
// Shape of the scale array: [scale_rows, scale_cols] (both 0 without scales).
int64_t weight_scale_rows(WeightFormat f, int64_t rows);
int64_t weight_scale_cols(WeightFormat f, int64_t cols);

// Checks sizes against the byte counts the caller has (e.g. from a safetensors header) and builds
// the view. `what` names the tensor in errors. kMXFP4 needs an even `cols` (whole bytes per row).
Result<WeightView> make_weight_view(WeightFormat f, int64_t rows, int64_t cols, const void* data,
                                    uint64_t data_bytes, const uint8_t* scales,
                                    uint64_t scale_bytes, std::string_view what);

// Rows [begin, end) as a view of their own (e.g. one group of a grouped projection). kFP8Block
// needs `begin` to be a multiple of 128 so the view starts on a scale-block boundary.
Result<WeightView> slice_rows(const WeightView& w, int64_t begin, int64_t end);

// Scans for codes the kernels do not accept: e4m3 NaN (0x7f/0xff) and e8m0 NaN (0xff) scales.
// The loader calls it once per tensor; kernels assume NaN-free weights.
Status check_weight_codes(const WeightView& w, std::string_view what);

// Fills data[n] (the data array of a format-f weight) with pseudo-random valid codes from `seed`
// (xorshift64): e4m3 without the NaN codes, any e2m1 nibble, bf16 / f32 normal values in
// [2^-8, 2^8) with random signs. For benchmarks and probes, where values do not change speed.
void fill_random_weight_codes(WeightFormat f, uint8_t* data, uint64_t n, uint64_t seed);

// ---- reference dequantization (exact in f32, §2.B) ----

float weight_at(const WeightView& w, int64_t row, int64_t col);
// out[cols] = row `row` of W.
void dequantize_row(const WeightView& w, int64_t row, float* out);
// out[rows, cols] = W.
void dequantize(const WeightView& w, float* out);

// ---- quantizers (round to nearest even, power-of-two scales 2^ceil(log2(amax / max_code))) ----

// w[rows, cols] f32 -> e4m3 codes [rows, cols] + e8m0 scales [ceil(rows/128), ceil(cols/128)].
// An all-zero block gets the smallest scale that the amax floor of §2.A gives (2^-22).
void quantize_fp8_block(const float* w, int64_t rows, int64_t cols, uint8_t* codes,
                        uint8_t* scales);
// w[rows, cols] f32 (cols even) -> packed e2m1 [rows, cols/2] + e8m0 scales [rows, ceil(cols/32)].
void quantize_mxfp4(const float* w, int64_t rows, int64_t cols, uint8_t* packed, uint8_t* scales);

}  // namespace frugal::quant
