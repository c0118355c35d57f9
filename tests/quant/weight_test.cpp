#include "quant/weight.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/convert.h"

namespace frugal::quant {
namespace {

TEST(WeightView, SizesAndScaleShapes) {
  // FP8: scales [ceil(out/128), ceil(in/128)].
  EXPECT_EQ(weight_data_bytes(WeightFormat::kFP8Block, 300, 200), 60000u);
  EXPECT_EQ(weight_scale_rows(WeightFormat::kFP8Block, 300), 3);
  EXPECT_EQ(weight_scale_cols(WeightFormat::kFP8Block, 200), 2);
  // MXFP4: data [out, in/2], scales [out, ceil(in/32)].
  EXPECT_EQ(weight_data_bytes(WeightFormat::kMXFP4, 3, 100), 150u);
  EXPECT_EQ(weight_scale_bytes(WeightFormat::kMXFP4, 3, 100), 12u);
  EXPECT_EQ(weight_data_bytes(WeightFormat::kBF16, 3, 5), 30u);
  EXPECT_EQ(weight_scale_bytes(WeightFormat::kF32, 3, 5), 0u);
}

TEST(WeightView, MakeChecksSizes) {
  std::vector<uint8_t> data(128 * 256), scales(2);
  auto ok = make_weight_view(WeightFormat::kFP8Block, 128, 256, data.data(), data.size(),
                             scales.data(), scales.size(), "layers.0.attn.wq_a");
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->rows, 128);

  auto bad_scale = make_weight_view(WeightFormat::kFP8Block, 128, 256, data.data(), data.size(),
                                    scales.data(), 1, "wq_a");
  ASSERT_FALSE(bad_scale.ok());
  EXPECT_NE(bad_scale.status().message().find("wq_a"), std::string::npos);
  EXPECT_NE(bad_scale.status().message().find("[1, 2]"), std::string::npos);

  auto bad_data =
      make_weight_view(WeightFormat::kBF16, 128, 256, data.data(), data.size(), nullptr, 0, "w");
  EXPECT_FALSE(bad_data.ok());
  auto odd_fp4 = make_weight_view(WeightFormat::kMXFP4, 2, 33, data.data(), 33, scales.data(), 4,
                                  "experts.0.w1");
  EXPECT_FALSE(odd_fp4.ok());
  auto stray_scales =
      make_weight_view(WeightFormat::kF32, 1, 4, data.data(), 16, scales.data(), 1, "w");
  EXPECT_FALSE(stray_scales.ok());
}

TEST(WeightView, DequantizeFp8Blocks) {
  // 130 x 129: four scale blocks, the last row/col blocks partial.
  const int64_t rows = 130, cols = 129;
  std::vector<uint8_t> codes(rows * cols), scales(4);
  for (int64_t i = 0; i < rows * cols; ++i) codes[i] = static_cast<uint8_t>((i * 7) % 256);
  for (auto& c : codes) {
    if ((c & 0x7f) == 0x7f) c = 0x3e;
  }
  scales = {127, 120, 130, 1};
  WeightView w{.format = WeightFormat::kFP8Block,
               .rows = rows,
               .cols = cols,
               .data = codes.data(),
               .scales = scales.data()};
  EXPECT_EQ(weight_at(w, 0, 0), e4m3_to_f32(codes[0]));
  EXPECT_EQ(weight_at(w, 5, 128), e4m3_to_f32(codes[5 * cols + 128]) * 0x1p-7f);
  EXPECT_EQ(weight_at(w, 128, 3), e4m3_to_f32(codes[128 * cols + 3]) * 8.0f);
  EXPECT_EQ(weight_at(w, 129, 128), e4m3_to_f32(codes[129 * cols + 128]) * 0x1p-126f);
  std::vector<float> row(cols);
  dequantize_row(w, 129, row.data());
  EXPECT_EQ(row[127], weight_at(w, 129, 127));
  EXPECT_TRUE(check_weight_codes(w, "w").ok());
  codes[77] = 0xff;
  Status s = check_weight_codes(w, "layers.3.attn.wkv");
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  EXPECT_NE(s.message().find("layers.3.attn.wkv"), std::string::npos);
}

TEST(WeightView, DequantizeMxfp4LowNibbleFirst) {
  // One row of 64: byte 0 = 0x71 -> element 0 = e2m1(1) = 0.5, element 1 = e2m1(7) = 6.
  std::vector<uint8_t> packed(32, 0), scales = {126, 129};
  packed[0] = 0x71;
  packed[16] = 0xf9;  // element 32 = -0.5, element 33 = -6, in scale block 1
  WeightView w{.format = WeightFormat::kMXFP4,
               .rows = 1,
               .cols = 64,
               .data = packed.data(),
               .scales = scales.data()};
  EXPECT_EQ(weight_at(w, 0, 0), 0.25f);
  EXPECT_EQ(weight_at(w, 0, 1), 3.0f);
  EXPECT_EQ(weight_at(w, 0, 32), -2.0f);  // scale 2^2
  EXPECT_EQ(weight_at(w, 0, 33), -24.0f);
  EXPECT_EQ(weight_at(w, 0, 2), 0.0f);
  scales[1] = 0xff;
  EXPECT_FALSE(check_weight_codes(w, "w").ok());
}

TEST(WeightView, SliceRows) {
  std::vector<uint8_t> codes(384 * 256), scales(3 * 2);
  for (size_t i = 0; i < scales.size(); ++i) scales[i] = static_cast<uint8_t>(120 + i);
  WeightView w{.format = WeightFormat::kFP8Block,
               .rows = 384,
               .cols = 256,
               .data = codes.data(),
               .scales = scales.data()};
  auto s = slice_rows(w, 128, 384);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->rows, 256);
  EXPECT_EQ(s->data, codes.data() + 128 * 256);
  EXPECT_EQ(s->scales, scales.data() + 2);
  EXPECT_FALSE(slice_rows(w, 64, 128).ok());   // not on a 128-row scale block
  EXPECT_FALSE(slice_rows(w, 256, 512).ok());  // past the end
}

// Quantizers: values already on the grid (code * power-of-two, block max at 448 resp. 6) come
// back exactly; random values come back within half a grid step of the block's scale.
TEST(Quantize, Fp8BlockRoundTrip) {
  const int64_t rows = 200, cols = 136;
  std::mt19937 rng(3);
  std::vector<float> w(rows * cols);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (float& v : w) v = normal(rng);
  std::vector<uint8_t> codes(rows * cols),
      scales(weight_scale_bytes(WeightFormat::kFP8Block, rows, cols));
  quantize_fp8_block(w.data(), rows, cols, codes.data(), scales.data());
  WeightView view{.format = WeightFormat::kFP8Block,
                  .rows = rows,
                  .cols = cols,
                  .data = codes.data(),
                  .scales = scales.data()};
  std::vector<float> back(rows * cols);
  dequantize(view, back.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float s = e8m0_to_f32(scales[(r / 128) * 2 + c / 128]);
      // e4m3 relative step is 2^-3: error <= 2^-4 |w|, or half a subnormal step 2^-10 * s.
      const float v = w[r * cols + c];
      ASSERT_LE(std::fabs(back[r * cols + c] - v), std::fmax(std::fabs(v) * 0x1p-4f, 0x1p-10f * s));
    }
  }
  // Re-quantizing the dequantized matrix is the identity.
  std::vector<uint8_t> codes2(codes.size()), scales2(scales.size());
  quantize_fp8_block(back.data(), rows, cols, codes2.data(), scales2.data());
  EXPECT_EQ(scales, scales2);
  std::vector<float> back2(rows * cols);
  WeightView view2 = view;
  view2.data = codes2.data();
  view2.scales = scales2.data();
  dequantize(view2, back2.data());
  EXPECT_EQ(back, back2);
}

TEST(Quantize, Mxfp4RoundTrip) {
  const int64_t rows = 3, cols = 70;  // last scale block has 6 elements
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> w(rows * cols);
  for (float& v : w) v = uni(rng);
  std::vector<uint8_t> packed(rows * cols / 2), scales(rows * 3);
  quantize_mxfp4(w.data(), rows, cols, packed.data(), scales.data());
  WeightView view{.format = WeightFormat::kMXFP4,
                  .rows = rows,
                  .cols = cols,
                  .data = packed.data(),
                  .scales = scales.data()};
  std::vector<float> back(rows * cols);
  dequantize(view, back.data());
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float s = e8m0_to_f32(scales[(i / cols) * 3 + (i % cols) / 32]);
    ASSERT_LE(std::fabs(back[i] - w[i]), s) << i;  // e2m1 steps are at most 2 (between 4 and 6)
  }
  std::vector<uint8_t> packed2(packed.size()), scales2(scales.size());
  quantize_mxfp4(back.data(), rows, cols, packed2.data(), scales2.data());
  EXPECT_EQ(packed, packed2);
  EXPECT_EQ(scales, scales2);
}

// The benchmark filler: every format's data is valid (no e4m3 NaN codes, check_weight_codes
// passes) and bf16 / f32 values are normal numbers in [2^-8, 2^8); different seeds differ.
TEST(WeightView, RandomCodesAreValid) {
  for (WeightFormat f :
       {WeightFormat::kFP8Block, WeightFormat::kMXFP4, WeightFormat::kBF16, WeightFormat::kF32}) {
    const int64_t rows = 130, cols = 256;
    std::vector<uint8_t> data(weight_data_bytes(f, rows, cols)), other(data.size());
    std::vector<uint8_t> scales(weight_scale_bytes(f, rows, cols), 127);
    fill_random_weight_codes(f, data.data(), data.size(), 7);
    fill_random_weight_codes(f, other.data(), other.size(), 8);
    EXPECT_NE(data, other);
    Result<WeightView> w =
        make_weight_view(f, rows, cols, data.data(), data.size(),
                         scales.empty() ? nullptr : scales.data(), scales.size(), "random");
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    EXPECT_TRUE(check_weight_codes(*w, "random").ok());
    std::vector<float> out(static_cast<size_t>(rows * cols));
    dequantize(*w, out.data());
    for (float v : out) {
      ASSERT_TRUE(std::isfinite(v));
      if (f == WeightFormat::kBF16 || f == WeightFormat::kF32) {
        EXPECT_GE(std::fabs(v), 0x1p-8f);
        EXPECT_LT(std::fabs(v), 0x1p8f);
      }
    }
  }
}

}  // namespace
}  // namespace frugal::quant
