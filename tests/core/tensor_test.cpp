#include "core/tensor.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <numeric>
#include <vector>

#include "core/convert.h"

namespace frugal {
namespace {

TEST(TensorView, ContiguousBasics) {
  std::vector<float> buf(24);
  std::iota(buf.begin(), buf.end(), 0.0f);
  auto r = TensorView::contiguous(reinterpret_cast<std::byte*>(buf.data()), DType::kF32, {2, 3, 4});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const TensorView t = *r;
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.bytes(), 96u);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.stride(0), 12);
  EXPECT_EQ(t.stride(1), 4);
  EXPECT_EQ(t.stride(2), 1);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.to_string(), "f32[2, 3, 4]");
  EXPECT_EQ(t.at<float>(1, 2, 3), 23.0f);
  EXPECT_EQ(t.at<float>(1, 0, 2), 14.0f);
  t.at<float>(0, 1, 1) = -5.0f;
  EXPECT_EQ(buf[5], -5.0f);
  EXPECT_EQ(t.data_as<float>(), buf.data());
}

TEST(TensorView, ScalarAndEmpty) {
  float x = 3.0f;
  auto s = TensorView::contiguous(reinterpret_cast<std::byte*>(&x), DType::kF32, {});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->rank(), 0);
  EXPECT_EQ(s->numel(), 1);
  EXPECT_EQ(s->at<float>(), 3.0f);
  auto e = TensorView::contiguous(nullptr, DType::kBF16, {4, 0, 3});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->numel(), 0);
  EXPECT_EQ(e->bytes(), 0u);
  EXPECT_TRUE(e->is_contiguous());
}

TEST(TensorView, ConstViewFromMutable) {
  std::array<uint16_t, 6> bf{};
  bf[4] = f32_to_bf16(1.5f);
  TensorView m =
      *TensorView::contiguous(reinterpret_cast<std::byte*>(bf.data()), DType::kBF16, {2, 3});
  ConstTensorView c = m;
  static_assert(std::is_same_v<decltype(c.data_as<uint16_t>()), const uint16_t*>);
  EXPECT_EQ(bf16_to_f32(c.at<uint16_t>(1, 1)), 1.5f);
  EXPECT_EQ(c.bytes(), 12u);
}

TEST(TensorView, SliceAndSelectShareMemory) {
  std::vector<int32_t> buf(4 * 6);
  std::iota(buf.begin(), buf.end(), 0);
  TensorView t =
      *TensorView::contiguous(reinterpret_cast<std::byte*>(buf.data()), DType::kI32, {4, 6});

  auto rows = t.slice(0, 1, 3);  // rows 1..2: still contiguous
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->dim(0), 2);
  EXPECT_TRUE(rows->is_contiguous());
  EXPECT_EQ(rows->data_as<int32_t>(), buf.data() + 6);
  EXPECT_EQ(rows->at<int32_t>(1, 5), 17);

  auto cols = t.slice(-1, 2, 5);  // columns 2..4: strided
  ASSERT_TRUE(cols.ok());
  EXPECT_FALSE(cols->is_contiguous());
  EXPECT_EQ(cols->numel(), 12);
  EXPECT_EQ(cols->at<int32_t>(3, 0), 20);
  EXPECT_EQ(cols->to_string(), "i32[4, 3] strides [6, 1]");

  auto row = t.select(0, 2);  // [6]
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->rank(), 1);
  EXPECT_EQ(row->at<int32_t>(4), 16);
  auto col = t.select(1, 3);  // [4] with stride 6
  ASSERT_TRUE(col.ok());
  EXPECT_EQ(col->stride(0), 6);
  EXPECT_EQ(col->at<int32_t>(2), 15);

  auto empty = t.slice(0, 4, 4);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->numel(), 0);

  EXPECT_EQ(t.slice(0, 2, 5).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(t.slice(0, 3, 2).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(t.slice(2, 0, 1).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(t.select(1, 6).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(t.select(-3, 0).status().code(), StatusCode::kOutOfRange);
}

TEST(TensorView, Reshape) {
  std::vector<float> buf(24);
  TensorView t =
      *TensorView::contiguous(reinterpret_cast<std::byte*>(buf.data()), DType::kF32, {2, 3, 4});
  auto r = t.reshape({6, -1});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->dim(0), 6);
  EXPECT_EQ(r->dim(1), 4);
  EXPECT_EQ(r->data(), t.data());
  EXPECT_TRUE(t.reshape({24}).ok());
  EXPECT_TRUE(t.reshape({1, 2, 1, 3, 4, 1}).ok());

  EXPECT_EQ(t.reshape({5, 5}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.reshape({-1, -1}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.reshape({5, -1}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.reshape({1, 1, 1, 1, 1, 1, 24}).status().code(), StatusCode::kInvalidArgument);
  auto cols = *t.slice(2, 0, 2);
  Status s = cols.reshape({12}).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("non-contiguous"), std::string::npos) << s.message();
  // A non-contiguous view whose dims of size 1 have odd strides is still contiguous.
  auto one = *t.slice(0, 1, 2);  // [1, 3, 4]
  EXPECT_TRUE(one.reshape({12}).ok());
}

TEST(TensorView, StridedAndBadLayouts) {
  std::vector<float> buf(16);
  std::byte* p = reinterpret_cast<std::byte*>(buf.data());
  const int64_t shape[] = {4, 4};
  const int64_t transposed[] = {1, 4};
  auto t = TensorView::strided(p, DType::kF32, shape, transposed);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->is_contiguous());
  buf[1 * 4 + 2] = 9.0f;
  EXPECT_EQ(t->at<float>(2, 1), 9.0f);
  const int64_t broadcast[] = {0, 1};
  EXPECT_TRUE(TensorView::strided(p, DType::kF32, shape, broadcast).ok());

  const int64_t neg_stride[] = {-4, 1};
  EXPECT_EQ(TensorView::strided(p, DType::kF32, shape, neg_stride).status().code(),
            StatusCode::kInvalidArgument);
  const int64_t short_strides[] = {1};
  EXPECT_EQ(TensorView::strided(p, DType::kF32, shape, short_strides).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TensorView::contiguous(p, DType::kF32, {2, -1}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TensorView::contiguous(p, DType::kF32, {1, 1, 1, 1, 1, 1, 1}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      TensorView::contiguous(p, DType::kF32, {int64_t{1} << 40, int64_t{1} << 40}).status().code(),
      StatusCode::kOutOfRange);
  const int64_t big_shape[] = {2, 2};
  const int64_t big_strides[] = {int64_t{1} << 62, 1};
  EXPECT_EQ(TensorView::strided(p, DType::kF32, big_shape, big_strides).status().code(),
            StatusCode::kOutOfRange);
}

TEST(TensorView, Fp4MustBePackedAlongLastDim) {
  // [2, 8] FP4 = 2 rows of 4 bytes; element (r, c) is nibble c % 2 of byte r * 4 + c / 2.
  std::array<uint8_t, 8> packed{};
  for (int i = 0; i < 16; ++i) fp4_set(packed.data(), i, static_cast<uint8_t>(i));
  auto t =
      TensorView::contiguous(reinterpret_cast<std::byte*>(packed.data()), DType::kFP4E2M1, {2, 8});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->bytes(), 8u);
  EXPECT_EQ(fp4_get(t->data_as<uint8_t>(), t->offset_of(1, 3)), 11);

  auto half = t->slice(1, 4, 8);  // columns 4..7 of each row: starts on byte 2
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(half->data(), t->data() + 2);
  EXPECT_EQ(fp4_get(half->data_as<uint8_t>(), half->offset_of(1, 1)), 13);
  auto row = t->select(0, 1);  // row 1 is bytes 4..7
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->data(), t->data() + 4);
  EXPECT_TRUE(t->reshape({16}).ok());
  EXPECT_TRUE(t->reshape({4, 4}).ok());

  EXPECT_EQ(t->slice(1, 3, 8).status().code(), StatusCode::kUnsupported);  // mid-byte start
  EXPECT_EQ(t->select(1, 2).status().code(), StatusCode::kUnsupported);    // column: stride 8
  EXPECT_EQ(t->reshape({8, 2}).status().code(), StatusCode::kOk);
  EXPECT_EQ(TensorView::contiguous(nullptr, DType::kFP4E2M1, {3, 5}).status().code(),
            StatusCode::kUnsupported);  // odd rows would start mid-byte
  const int64_t shape[] = {8, 2};
  const int64_t transposed[] = {1, 8};
  EXPECT_EQ(TensorView::strided(nullptr, DType::kFP4E2M1, shape, transposed).status().code(),
            StatusCode::kUnsupported);
  EXPECT_TRUE(TensorView::contiguous(nullptr, DType::kFP4E2M1, {1, 5}).ok());  // one odd row: fine
}

TEST(TensorView, StorageTypes) {
  static_assert(storage_type_matches<float>(DType::kF32));
  static_assert(!storage_type_matches<float>(DType::kBF16));
  static_assert(storage_type_matches<uint16_t>(DType::kBF16));
  static_assert(storage_type_matches<uint16_t>(DType::kF16));
  static_assert(storage_type_matches<uint8_t>(DType::kF8E4M3));
  static_assert(storage_type_matches<uint8_t>(DType::kFP4E2M1));
  static_assert(!storage_type_matches<int8_t>(DType::kU8));
  static_assert(storage_type_matches<int64_t>(DType::kI64));
  static_assert(storage_type_matches<std::byte>(DType::kI32));
  static_assert(!storage_type_matches<double>(DType::kF32));
}

}  // namespace
}  // namespace frugal
