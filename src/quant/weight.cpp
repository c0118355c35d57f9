#include "quant/weight.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/convert.h"
#include "quant/act_quant.h"

namespace frugal::quant {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string shape_str(int64_t rows, int64_t cols) {
  std::string s = "[";
  s += std::to_string(rows);
  s += ", ";
  s += std::to_string(cols);
  s += "]";
  return s;
}

// Rows and columns beyond which byte counts could overflow int64 are refused up front.
constexpr int64_t kMaxDim = int64_t{1} << 31;

}  // namespace

std::string_view weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kF32:
      return "f32";
    case WeightFormat::kBF16:
      return "bf16";
    case WeightFormat::kFP8Block:
      return "fp8_e4m3 (128x128 e8m0 scales)";
    case WeightFormat::kMXFP4:
      return "mxfp4 (e2m1, 1x32 e8m0 scales)";
  }
  return "?";
}

uint64_t weight_data_bytes(WeightFormat f, int64_t rows, int64_t cols) {
  const uint64_t n = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  switch (f) {
    case WeightFormat::kF32:
      return 4 * n;
    case WeightFormat::kBF16:
      return 2 * n;
    case WeightFormat::kFP8Block:
      return n;
    case WeightFormat::kMXFP4:
      return static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols / 2);
  }
  return 0;
}

int64_t weight_scale_rows(WeightFormat f, int64_t rows) {
  if (f == WeightFormat::kFP8Block) return ceil_div(rows, kFp8BlockRows);
  if (f == WeightFormat::kMXFP4) return rows;
  return 0;
}

int64_t weight_scale_cols(WeightFormat f, int64_t cols) {
  if (f == WeightFormat::kFP8Block) return ceil_div(cols, kFp8BlockCols);
  if (f == WeightFormat::kMXFP4) return ceil_div(cols, kMxfp4Block);
  return 0;
}

uint64_t weight_scale_bytes(WeightFormat f, int64_t rows, int64_t cols) {
  return static_cast<uint64_t>(weight_scale_rows(f, rows)) *
         static_cast<uint64_t>(weight_scale_cols(f, cols));
}

Result<WeightView> make_weight_view(WeightFormat f, int64_t rows, int64_t cols, const void* data,
                                    uint64_t data_bytes, const uint8_t* scales,
                                    uint64_t scale_bytes, std::string_view what) {
  const std::string name(what);
  if (rows <= 0 || cols <= 0 || rows > kMaxDim || cols > kMaxDim) {
    return invalid_argument(name + ": weight shape " + shape_str(rows, cols) +
                            " must have sizes in [1, 2^31]");
  }
  if (f == WeightFormat::kMXFP4 && cols % 2 != 0) {
    return invalid_argument(name + ": packed FP4 weight needs an even number of columns, got " +
                            std::to_string(cols));
  }
  const uint64_t want_data = weight_data_bytes(f, rows, cols);
  if (data == nullptr || data_bytes != want_data) {
    return invalid_argument(name + ": " + std::string(weight_format_name(f)) + " weight " +
                            shape_str(rows, cols) + " needs " + std::to_string(want_data) +
                            " data bytes, got " + std::to_string(data ? data_bytes : 0));
  }
  const uint64_t want_scales = weight_scale_bytes(f, rows, cols);
  if (want_scales == 0 && scales != nullptr) {
    return invalid_argument(name + ": " + std::string(weight_format_name(f)) +
                            " weight takes no scales");
  }
  if (want_scales != 0 && (scales == nullptr || scale_bytes != want_scales)) {
    return invalid_argument(name + ": scales of " + std::string(weight_format_name(f)) +
                            " weight " + shape_str(rows, cols) + " must be e8m0 " +
                            shape_str(weight_scale_rows(f, rows), weight_scale_cols(f, cols)) +
                            " (" + std::to_string(want_scales) + " bytes), got " +
                            std::to_string(scales ? scale_bytes : 0));
  }
  return WeightView{.format = f, .rows = rows, .cols = cols, .data = data, .scales = scales};
}

Result<WeightView> slice_rows(const WeightView& w, int64_t begin, int64_t end) {
  if (begin < 0 || end > w.rows || begin >= end) {
    return out_of_range("row slice [" + std::to_string(begin) + ", " + std::to_string(end) +
                        ") of a weight with " + std::to_string(w.rows) + " rows");
  }
  if (w.format == WeightFormat::kFP8Block && begin % kFp8BlockRows != 0) {
    return invalid_argument(
        "row slice of an FP8 block weight must start at a multiple of 128, got " +
        std::to_string(begin));
  }
  WeightView v = w;
  v.rows = end - begin;
  const auto* base = static_cast<const uint8_t*>(w.data);
  v.data = base + weight_data_bytes(w.format, begin, w.cols);
  if (w.scales != nullptr) {
    const int64_t scale_row = w.format == WeightFormat::kFP8Block ? begin / kFp8BlockRows : begin;
    v.scales = w.scales + scale_row * weight_scale_cols(w.format, w.cols);
  }
  return v;
}

Status check_weight_codes(const WeightView& w, std::string_view what) {
  const uint64_t n_scales = weight_scale_bytes(w.format, w.rows, w.cols);
  for (uint64_t i = 0; i < n_scales; ++i) {
    if (w.scales[i] == 0xff) {
      return corrupt(std::string(what) + ": e8m0 scale " + std::to_string(i) +
                     " is 0xff (NaN); scales must be finite powers of two");
    }
  }
  if (w.format == WeightFormat::kFP8Block) {
    const auto* c = static_cast<const uint8_t*>(w.data);
    const uint64_t n = weight_data_bytes(w.format, w.rows, w.cols);
    for (uint64_t i = 0; i < n; ++i) {
      if ((c[i] & 0x7f) == 0x7f) {
        return corrupt(std::string(what) + ": e4m3 code at element " + std::to_string(i) +
                       " is NaN (0x" + (c[i] == 0xff ? std::string("ff") : std::string("7f")) +
                       "); FP8 weights must be finite");
      }
    }
  }
  return ok_status();
}

float weight_at(const WeightView& w, int64_t row, int64_t col) {
  switch (w.format) {
    case WeightFormat::kF32:
      return static_cast<const float*>(w.data)[row * w.cols + col];
    case WeightFormat::kBF16:
      return bf16_to_f32(static_cast<const uint16_t*>(w.data)[row * w.cols + col]);
    case WeightFormat::kFP8Block: {
      const uint8_t code = static_cast<const uint8_t*>(w.data)[row * w.cols + col];
      const uint8_t s = w.scales[(row / kFp8BlockRows) * weight_scale_cols(w.format, w.cols) +
                                 col / kFp8BlockCols];
      return e4m3_to_f32(code) * e8m0_to_f32(s);
    }
    case WeightFormat::kMXFP4: {
      const auto* row_bytes = static_cast<const uint8_t*>(w.data) + row * (w.cols / 2);
      const uint8_t s = w.scales[row * weight_scale_cols(w.format, w.cols) + col / kMxfp4Block];
      return e2m1_to_f32(fp4_get(row_bytes, static_cast<uint64_t>(col))) * e8m0_to_f32(s);
    }
  }
  return 0.0f;
}

void dequantize_row(const WeightView& w, int64_t row, float* out) {
  for (int64_t c = 0; c < w.cols; ++c) out[c] = weight_at(w, row, c);
}

void dequantize(const WeightView& w, float* out) {
  for (int64_t r = 0; r < w.rows; ++r) dequantize_row(w, r, out + r * w.cols);
}

void quantize_fp8_block(const float* w, int64_t rows, int64_t cols, uint8_t* codes,
                        uint8_t* scales) {
  const int64_t scols = weight_scale_cols(WeightFormat::kFP8Block, cols);
  for (int64_t r0 = 0; r0 < rows; r0 += kFp8BlockRows) {
    const int64_t r1 = std::min(rows, r0 + kFp8BlockRows);
    for (int64_t c0 = 0; c0 < cols; c0 += kFp8BlockCols) {
      const int64_t c1 = std::min(cols, c0 + kFp8BlockCols);
      float amax = 0.0f;
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) amax = std::fmax(amax, std::fabs(w[r * cols + c]));
      }
      const uint8_t sc = fp8_scale_code(amax);
      scales[(r0 / kFp8BlockRows) * scols + c0 / kFp8BlockCols] = sc;
      const float s = e8m0_to_f32(sc);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) {
          const float q = std::fmin(std::fmax(w[r * cols + c] / s, -kFp8Max), kFp8Max);
          codes[r * cols + c] = f32_to_e4m3(q);
        }
      }
    }
  }
}

void quantize_mxfp4(const float* w, int64_t rows, int64_t cols, uint8_t* packed, uint8_t* scales) {
  FRUGAL_CHECK_MSG(cols % 2 == 0, "packed FP4 needs an even number of columns");
  const int64_t scols = weight_scale_cols(WeightFormat::kMXFP4, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* wr = w + r * cols;
    uint8_t* pr = packed + r * (cols / 2);
    std::memset(pr, 0, static_cast<size_t>(cols / 2));
    for (int64_t c0 = 0; c0 < cols; c0 += kMxfp4Block) {
      const int64_t c1 = std::min(cols, c0 + kMxfp4Block);
      float amax = 0.0f;
      for (int64_t c = c0; c < c1; ++c) amax = std::fmax(amax, std::fabs(wr[c]));
      const uint8_t sc = fp4_scale_code(amax);
      scales[r * scols + c0 / kMxfp4Block] = sc;
      const float s = e8m0_to_f32(sc);
      for (int64_t c = c0; c < c1; ++c) {
        const uint8_t q = f32_to_e2m1(std::fmin(std::fmax(wr[c] / s, -kFp4Max), kFp4Max));
        pr[c >> 1] |= static_cast<uint8_t>((c & 1) ? q << 4 : q);
      }
    }
  }
}

void fill_random_weight_codes(WeightFormat f, uint8_t* data, uint64_t n, uint64_t seed) {
  uint64_t s = seed != 0 ? seed : 0x9e3779b97f4a7c15ull;
  auto next = [&s] {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  };
  switch (f) {
    case WeightFormat::kFP8Block:
      for (uint64_t j = 0; j < n; ++j) {
        const auto b = static_cast<uint8_t>(next());
        data[j] = (b & 0x7f) == 0x7f ? 0x3e : b;
      }
      break;
    case WeightFormat::kMXFP4:
      for (uint64_t j = 0; j < n; ++j) data[j] = static_cast<uint8_t>(next());
      break;
    case WeightFormat::kBF16:
      for (uint64_t j = 0; j + 2 <= n; j += 2) {
        const uint64_t r = next();
        const auto h = static_cast<uint16_t>(((r & 1) << 15) | ((119 + (r >> 1) % 16) << 7) |
                                             ((r >> 8) & 0x7f));
        std::memcpy(data + j, &h, 2);
      }
      break;
    case WeightFormat::kF32:
      for (uint64_t j = 0; j + 4 <= n; j += 4) {
        const uint64_t r = next();
        const auto w = static_cast<uint32_t>(((r & 1) << 31) | ((119 + (r >> 1) % 16) << 23) |
                                             ((r >> 8) & 0x7fffff));
        std::memcpy(data + j, &w, 4);
      }
      break;
  }
}

}  // namespace frugal::quant
