// Scalar y = x W^T for every weight format: each row is dequantized exactly (doc §2.B) a chunk
// at a time into a small buffer, then dotted with every token's x, accumulating in f32 in index
// order. Also the production path where no SIMD kernel exists (e.g. Arm until it gets one).
#include <algorithm>
#include <bit>

#include "core/convert.h"
#include "kernels/ref/ref.h"

namespace frugal::kernels::ref {
namespace {

using quant::WeightFormat;
using quant::WeightView;

constexpr int64_t kChunk = 256;  // columns per dequantized chunk (a multiple of 128 and 32)

// Every e4m3 code's value (NaN codes included, as convert.h defines them): a table lookup per
// element instead of a conversion call. Built once; immutable afterwards.
struct Fp8Table {
  float v[256];
  Fp8Table() {
    for (int c = 0; c < 256; ++c) v[c] = e4m3_to_f32(static_cast<uint8_t>(c));
  }
};
const Fp8Table& fp8_table() {
  static const Fp8Table t;
  return t;
}

// w[row, c0 .. c0 + n) -> out[n], exact.
void dequant_chunk(const WeightView& w, int64_t row, int64_t c0, int64_t n, float* out) {
  switch (w.format) {
    case WeightFormat::kF32: {
      const float* src = static_cast<const float*>(w.data) + row * w.cols + c0;
      std::copy(src, src + n, out);
      return;
    }
    case WeightFormat::kBF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + row * w.cols + c0;
      // bf16 is the top half of an f32 (what bf16_to_f32 computes), inlined here.
      for (int64_t i = 0; i < n; ++i) out[i] = std::bit_cast<float>(uint32_t{src[i]} << 16);
      return;
    }
    case WeightFormat::kFP8Block: {
      const uint8_t* src = static_cast<const uint8_t*>(w.data) + row * w.cols + c0;
      const int64_t scols = (w.cols + quant::kFp8BlockCols - 1) / quant::kFp8BlockCols;
      const uint8_t* srow = w.scales + (row / quant::kFp8BlockRows) * scols;
      const float* table = fp8_table().v;
      for (int64_t b = 0; b < n; b += quant::kFp8BlockCols) {  // c0 and b: multiples of 128
        const float s = e8m0_to_f32(srow[(c0 + b) / quant::kFp8BlockCols]);
        const int64_t e = std::min(n, b + quant::kFp8BlockCols);
        for (int64_t i = b; i < e; ++i) out[i] = table[src[i]] * s;
      }
      return;
    }
    case WeightFormat::kMXFP4: {
      const uint8_t* packed = static_cast<const uint8_t*>(w.data) + row * (w.cols / 2);
      const int64_t scols = (w.cols + quant::kMxfp4Block - 1) / quant::kMxfp4Block;
      const uint8_t* srow = w.scales + row * scols;
      float values[16];
      for (int v = 0; v < 16; ++v) values[v] = e2m1_to_f32(static_cast<uint8_t>(v));
      for (int64_t b = 0; b < n; b += quant::kMxfp4Block) {  // c0 and b: multiples of 32
        const float s = e8m0_to_f32(srow[(c0 + b) / quant::kMxfp4Block]);
        const int64_t e = std::min(n, b + quant::kMxfp4Block);
        for (int64_t i = b; i < e; ++i) {
          out[i] = values[fp4_get(packed, static_cast<uint64_t>(c0 + i))] * s;
        }
      }
      return;
    }
  }
}

}  // namespace

void matmul(const MatmulTask& task, int64_t r0, int64_t r1) {
  const WeightView& w = task.w;
  constexpr int64_t kMaxTokens = 16;  // tokens per pass, so the accumulators stay on the stack
  float wbuf[kChunk];
  float acc[kMaxTokens];
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t t0 = 0; t0 < task.m; t0 += kMaxTokens) {
      const int64_t nt = std::min(kMaxTokens, task.m - t0);
      std::fill(acc, acc + nt, 0.0f);
      for (int64_t c0 = 0; c0 < w.cols; c0 += kChunk) {
        const int64_t n = std::min(kChunk, w.cols - c0);
        dequant_chunk(w, r, c0, n, wbuf);
        for (int64_t t = 0; t < nt; ++t) {
          const float* x = task.x + (t0 + t) * task.ldx + c0;
          float a = acc[t];
          for (int64_t i = 0; i < n; ++i) a += x[i] * wbuf[i];
          acc[t] = a;
        }
      }
      for (int64_t t = 0; t < nt; ++t) task.y[(t0 + t) * task.ldy + r] = acc[t];
    }
  }
}

}  // namespace frugal::kernels::ref
