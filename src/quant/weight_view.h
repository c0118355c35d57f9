// The description of one weight matrix (see quant/weight.h for the formats and their helpers).
//
// Kept in a header of its own with nothing but plain data, so the per-ISA kernel files can read a
// WeightView without instantiating shared inline code under their own compiler flags (an inline
// function compiled with AVX-512 flags could be picked by the linker for baseline callers).
#pragma once

#include <cstdint>

namespace frugal::quant {

enum class WeightFormat : uint8_t { kF32, kBF16, kFP8Block, kMXFP4 };
inline constexpr int kNumWeightFormats = 4;

inline constexpr int64_t kFp8BlockRows = 128;
inline constexpr int64_t kFp8BlockCols = 128;
inline constexpr int64_t kMxfp4Block = 32;

struct WeightView {
  WeightFormat format = WeightFormat::kF32;
  int64_t rows = 0;  // out features
  int64_t cols = 0;  // in features
  const void* data = nullptr;
  const uint8_t* scales = nullptr;  // e8m0 codes for kFP8Block / kMXFP4; null otherwise
};

}  // namespace frugal::quant
