// Writing and reading safetensors files: round trips of every dtype, layout guarantees, and
// the writer's own input checks.
#include "format/safetensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "st_test_util.h"

namespace frugal::format {
namespace {

using testing::entries;
using testing::expect_error;
using testing::TempDir;

// Bytes that differ per tensor and per position, so a swapped or shifted view is caught.
std::vector<std::byte> pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed * 17 + 7) & 0xff);
  return v;
}

struct Owned {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};

std::vector<Owned> every_dtype() {
  const DType kAll[] = {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3, DType::kF8E8M0,
                        DType::kI8,  DType::kU8,   DType::kI32, DType::kI64};
  std::vector<Owned> out;
  uint8_t seed = 1;
  for (const DType d : kAll) {
    // Odd shapes so sizes are not multiples of 8 and the layout has to keep alignment itself.
    const std::vector<int64_t> shape = {3, 5};
    out.push_back(
        {"t." + std::string(dtype_name(d)), d, shape, pattern(dtype_bytes(d, 15), seed++)});
  }
  out.push_back({"scalar", DType::kF32, {}, pattern(4, seed++)});
  out.push_back({"empty", DType::kBF16, {0, 4}, {}});
  return out;
}

std::vector<TensorToWrite> views(const std::vector<Owned>& owned) {
  std::vector<TensorToWrite> out;
  for (const auto& o : owned) out.push_back({o.name, o.dtype, o.shape, o.bytes});
  return out;
}

TEST(Safetensors, RoundTripEveryDtype) {
  TempDir dir;
  const auto owned = every_dtype();
  const auto tensors = views(owned);
  const std::string path = dir.file("all.safetensors");
  ASSERT_TRUE(write_safetensors(path, tensors, {{"format", "pt"}, {"note", "round trip"}}).ok());
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"all.safetensors"});  // no temporary

  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->metadata().at("note"), "round trip");
  ASSERT_EQ(f->tensors().size(), owned.size());
  for (const auto& o : owned) {
    const TensorInfo* t = f->find(o.name);
    ASSERT_NE(t, nullptr) << o.name;
    EXPECT_EQ(t->dtype, o.dtype) << o.name;
    EXPECT_EQ(t->shape, o.shape) << o.name;
    EXPECT_EQ(t->numel(), o.shape.empty() ? 1u : static_cast<uint64_t>(o.shape[0] * o.shape[1]));
    ASSERT_EQ(t->size, o.bytes.size()) << o.name;
    EXPECT_TRUE(std::equal(t->data.begin(), t->data.end(), o.bytes.begin())) << o.name;
    EXPECT_EQ(t->file, &f->path());
    // Zero-copy: the view points into the mapping, at the recorded offset.
    EXPECT_EQ(t->data.data(), f->mapping().data() + t->offset) << o.name;
    // Each tensor starts aligned to its element size within the file.
    EXPECT_EQ(t->offset % (dtype_bits(t->dtype) / 8), 0u) << o.name;
  }
  EXPECT_EQ(f->find("absent"), nullptr);

  // The header is space-padded to a multiple of 8 and the buffer has no gaps.
  auto parsed = parse_safetensors(f->mapping().bytes(), path);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->header_bytes % 8, 0u);
  EXPECT_EQ(parsed->gap_bytes, 0u);
  const std::string raw = testing::read_file(path);
  EXPECT_EQ(raw[8], '{');
}

TEST(Safetensors, OverwriteReplacesAtomically) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  const auto a = pattern(8, 1), b = pattern(16, 2);
  const TensorToWrite ta[] = {{"a", DType::kF32, {2}, a}};
  const TensorToWrite tb[] = {{"b", DType::kF32, {4}, b}};
  ASSERT_TRUE(write_safetensors(path, ta).ok());
  ASSERT_TRUE(write_safetensors(path, tb).ok());
  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->find("a"), nullptr);
  ASSERT_NE(f->find("b"), nullptr);
  EXPECT_TRUE(f->metadata().empty());
}

TEST(Safetensors, EmptyFileHasNoTensors) {
  TempDir dir;
  const std::string path = dir.file("none.safetensors");
  ASSERT_TRUE(write_safetensors(path, {}).ok());
  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_TRUE(f->tensors().empty());
}

TEST(SafetensorsWriter, RejectsSizeNotMatchingShape) {
  TempDir dir;
  const auto bytes = pattern(10, 3);
  const TensorToWrite t[] = {{"layers.0.attn.wq_a.weight", DType::kF8E4M3, {4, 4}, bytes}};
  const std::string path = dir.file("bad.safetensors");
  expect_error(write_safetensors(path, t), StatusCode::kInvalidArgument,
               {"'layers.0.attn.wq_a.weight'", "F8_E4M3 [4, 4] needs 16 bytes but 10 were given"});
  EXPECT_TRUE(entries(dir.path()).empty());  // neither the file nor a temporary
}

TEST(SafetensorsWriter, RejectsBadNamesShapesAndDtypes) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  const auto four = pattern(4, 4);
  {
    const TensorToWrite t[] = {{"a", DType::kF32, {1}, four}, {"a", DType::kF32, {1}, four}};
    expect_error(write_safetensors(path, t), StatusCode::kInvalidArgument, {"'a' is given twice"});
  }
  {
    const TensorToWrite t[] = {{"", DType::kF32, {1}, four}};
    expect_error(write_safetensors(path, t), StatusCode::kInvalidArgument, {"empty name"});
  }
  {
    const TensorToWrite t[] = {{"bad\xff", DType::kF32, {1}, four}};
    expect_error(write_safetensors(path, t), StatusCode::kInvalidArgument, {"not valid UTF-8"});
  }
  {
    const TensorToWrite t[] = {{"__metadata__", DType::kF32, {1}, four}};
    expect_error(write_safetensors(path, t), StatusCode::kInvalidArgument, {"reserved"});
  }
  {
    const TensorToWrite t[] = {{"neg", DType::kF32, {-1}, four}};
    expect_error(write_safetensors(path, t), StatusCode::kInvalidArgument,
                 {"'neg'", "negative dim"});
  }
  {
    const TensorToWrite t[] = {{"packed", DType::kFP4E2M1, {8}, four}};
    expect_error(write_safetensors(path, t), StatusCode::kInvalidArgument,
                 {"'packed'", "fp4_e2m1", "I8"});
  }
  {
    const TensorToWrite t[] = {{"big", DType::kF32, {int64_t{1} << 62, 8}, four}};
    expect_error(write_safetensors(path, t), StatusCode::kInvalidArgument, {"'big'", "overflows"});
  }
  expect_error(write_safetensors(path, {}, {{"k", "bad\xc0"}}), StatusCode::kInvalidArgument,
               {"metadata 'k'"});
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SafetensorsWriter, ReportsUnwritablePath) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/x.safetensors");
  expect_error(write_safetensors(path, {}), StatusCode::kIoError, {path + ".tmp", "cannot create"});
}

}  // namespace
}  // namespace frugal::format
