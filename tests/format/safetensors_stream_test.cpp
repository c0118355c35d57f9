// The streaming writer (format/safetensors_writer.h): pieces land at their tensor's place, the
// result reads back like write_sharded's, chained tensors share a shard, and a producer that
// gives too few or too many bytes is an error naming the tensor that leaves no shard behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "support/temp_dir.h"

namespace frugal::format {
namespace {

namespace fs = std::filesystem;

// Byte i of tensor t: a pattern that differs between tensors and positions.
std::byte pattern(size_t t, uint64_t i) { return std::byte(static_cast<uint8_t>(t * 37 + i * 11)); }

std::vector<TensorToStream> tensors() {
  return {
      {.name = "a.f32", .dtype = DType::kF32, .shape = {300}},
      {.name = "b.i8", .dtype = DType::kI8, .shape = {100, 7}},
      {.name = "c.i8", .dtype = DType::kI8, .shape = {500}, .same_shard_as_previous = true},
      {.name = "e.i8", .dtype = DType::kI8, .shape = {500}},
      {.name = "d.bf16", .dtype = DType::kBF16, .shape = {64, 3}},
  };
}

// Produces tensor i in pieces of 13 bytes; `extra` bytes more or fewer for tensor `odd`.
TensorProducer producer(const std::vector<TensorToStream>& ts, std::vector<size_t>* calls,
                        size_t odd = SIZE_MAX, int64_t extra = 0) {
  return [&ts, calls, odd, extra](size_t i, TensorSink& sink) -> Status {
    if (calls) calls->push_back(i);
    uint64_t n = static_cast<uint64_t>(dtype_bits(ts[i].dtype) / 8);
    for (const int64_t d : ts[i].shape) n *= static_cast<uint64_t>(d);
    if (i == odd) n = static_cast<uint64_t>(static_cast<int64_t>(n) + extra);
    std::vector<std::byte> piece;
    for (uint64_t at = 0; at < n;) {
      piece.clear();
      for (uint64_t j = at; j < std::min<uint64_t>(n, at + 13); ++j) piece.push_back(pattern(i, j));
      FRUGAL_RETURN_IF_ERROR(sink.append(piece));
      at += piece.size();
    }
    return ok_status();
  };
}

TEST(SafetensorsStream, WritesEachTensorAtItsPlace) {
  const test::ScopedTempDir tmp("st-stream");
  const std::vector<TensorToStream> ts = tensors();
  std::vector<size_t> calls;
  uint64_t reported = 0;
  // 1,000-byte shards: a.f32 (1,200) alone; b.i8 + c.i8 (1,200, chained) alone; e + d.
  ASSERT_TRUE(write_sharded_streamed(
                  tmp.str(), ts, producer(ts, &calls),
                  {.max_shard_bytes = 1000, .on_written = [&](uint64_t n) { reported += n; }})
                  .ok());
  EXPECT_EQ(calls, (std::vector<size_t>{0, 1, 2, 3, 4}));  // the given order
  auto ck = Checkpoint::open(tmp.str());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  EXPECT_EQ(ck->files().size(), 3u);
  EXPECT_EQ(reported, ck->total_bytes());
  for (size_t i = 0; i < ts.size(); ++i) {
    const TensorInfo* t = ck->find(ts[i].name);
    ASSERT_NE(t, nullptr) << ts[i].name;
    EXPECT_EQ(t->dtype, ts[i].dtype);
    EXPECT_EQ(t->shape, ts[i].shape);
    for (uint64_t j = 0; j < t->size; ++j) ASSERT_EQ(t->data[j], pattern(i, j)) << ts[i].name;
  }
  EXPECT_EQ(ck->find("b.i8")->file, ck->find("c.i8")->file);
  EXPECT_EQ(ck->find("c.i8")->offset, ck->find("b.i8")->offset + ck->find("b.i8")->size);
  // Larger elements first within a shard: d.bf16 before e.i8, though produced after it.
  EXPECT_LT(ck->find("d.bf16")->offset, ck->find("e.i8")->offset);
}

TEST(SafetensorsStream, MatchesWriteSharded) {
  const test::ScopedTempDir tmp("st-stream-same");
  std::vector<TensorToStream> ts = tensors();
  for (auto& t : ts) t.same_shard_as_previous = false;
  ASSERT_TRUE(write_sharded_streamed(tmp.file("streamed"), ts, producer(ts, nullptr),
                                     {.max_shard_bytes = 1000})
                  .ok());
  std::vector<std::vector<std::byte>> data(ts.size());
  std::vector<TensorToWrite> writes;
  for (size_t i = 0; i < ts.size(); ++i) {
    uint64_t n = static_cast<uint64_t>(dtype_bits(ts[i].dtype) / 8);
    for (const int64_t d : ts[i].shape) n *= static_cast<uint64_t>(d);
    for (uint64_t j = 0; j < n; ++j) data[i].push_back(pattern(i, j));
    writes.push_back(
        {.name = ts[i].name, .dtype = ts[i].dtype, .shape = ts[i].shape, .data = data[i]});
  }
  ASSERT_TRUE(write_sharded(tmp.file("memory"), writes, 1000).ok());
  for (const auto& entry : fs::directory_iterator(tmp.file("memory"))) {
    const std::string name = entry.path().filename().string();
    std::ifstream a(entry.path(), std::ios::binary),
        b(tmp.file("streamed") + "/" + name, std::ios::binary);
    const std::string sa((std::istreambuf_iterator<char>(a)), {});
    const std::string sb((std::istreambuf_iterator<char>(b)), {});
    EXPECT_EQ(sa, sb) << name;
  }
}

TEST(SafetensorsStream, WrongByteCountsAreErrors) {
  const test::ScopedTempDir tmp("st-stream-bad");
  const std::vector<TensorToStream> ts = tensors();
  for (const int64_t extra : {-1, 1}) {
    const std::string dir = tmp.file(extra < 0 ? "short" : "long");
    const Status s =
        write_sharded_streamed(dir, ts, producer(ts, nullptr, 4, extra), {.max_shard_bytes = 1000});
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("d.bf16"), std::string::npos) << s.message();
    // The shards before it are complete; the one being written is gone, temporaries too.
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
      EXPECT_NE(name, "model-00003-of-00003.safetensors");
      EXPECT_NE(name, "model.safetensors.index.json");
    }
  }
}

TEST(SafetensorsStream, ProducerErrorsStopTheWrite) {
  const test::ScopedTempDir tmp("st-stream-err");
  const std::vector<TensorToStream> ts = tensors();
  const Status s = write_sharded_streamed(tmp.str(), ts,
                                          [](size_t i, TensorSink&) -> Status {
                                            return i == 0 ? io_error("disk on fire") : ok_status();
                                          },
                                          {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "disk on fire");
  EXPECT_TRUE(fs::is_empty(tmp.path()));
}

}  // namespace
}  // namespace frugal::format
