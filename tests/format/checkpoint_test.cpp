// Checkpoints: single files, directories, sharded round trips, and every index corruption.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "format/safetensors.h"
#include "st_test_util.h"

namespace frugal::format {
namespace {

using testing::expect_error;
using testing::TempDir;
namespace fs = std::filesystem;

struct Owned {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};

// One of each kind of tensor a V4 checkpoint holds (architecture doc §3.2, §4.1), small.
std::vector<Owned> v4_like() {
  const std::vector<std::tuple<std::string, DType, std::vector<int64_t>>> spec = {
      {"embed.weight", DType::kBF16, {64, 16}},
      {"layers.0.attn.wq_a.weight", DType::kF8E4M3, {256, 128}},
      {"layers.0.attn.wq_a.scale", DType::kF8E8M0, {2, 1}},
      {"layers.0.attn.attn_sink", DType::kF32, {4}},
      {"layers.0.ffn.experts.0.w1.weight", DType::kI8, {32, 64}},
      {"layers.0.ffn.experts.0.w1.scale", DType::kF8E8M0, {32, 4}},
      {"layers.0.ffn.gate.tid2eid", DType::kI64, {64, 6}},
      {"layers.0.hc_attn_fn", DType::kF32, {24, 16}},
      {"norm.weight", DType::kBF16, {16}},
      {"extra.f16", DType::kF16, {5}},
      {"extra.u8", DType::kU8, {7}},
      {"extra.i32", DType::kI32, {3}},
  };
  std::vector<Owned> out;
  uint8_t seed = 0;
  for (const auto& [name, dtype, shape] : spec) {
    uint64_t n = 1;
    for (const auto d : shape) n *= static_cast<uint64_t>(d);
    std::vector<std::byte> bytes(dtype_bytes(dtype, n));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i * 7 + seed * 29);
    ++seed;
    out.push_back({name, dtype, shape, std::move(bytes)});
  }
  return out;
}

std::vector<TensorToWrite> views(const std::vector<Owned>& owned) {
  std::vector<TensorToWrite> out;
  for (const auto& o : owned) out.push_back({o.name, o.dtype, o.shape, o.bytes});
  return out;
}

void expect_holds_all(const Checkpoint& ck, const std::vector<Owned>& owned) {
  ASSERT_EQ(ck.size(), owned.size());
  uint64_t total = 0;
  for (const auto& o : owned) {
    const TensorInfo* t = ck.find(o.name);
    ASSERT_NE(t, nullptr) << o.name;
    EXPECT_EQ(t->dtype, o.dtype) << o.name;
    EXPECT_EQ(t->shape, o.shape) << o.name;
    ASSERT_EQ(t->size, o.bytes.size()) << o.name;
    EXPECT_EQ(std::memcmp(t->data.data(), o.bytes.data(), t->size), 0) << o.name;
    ASSERT_NE(t->file, nullptr);
    total += t->size;
  }
  EXPECT_EQ(ck.total_bytes(), total);
  const auto all = ck.tensors();
  ASSERT_EQ(all.size(), owned.size());
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1]->name, all[i]->name);
  EXPECT_EQ(ck.find("absent"), nullptr);
}

class ShardedTest : public ::testing::Test {
 protected:
  // Writes the V4-like set in shards of at most 8 KiB of data (the 32 KiB wq_a gets its own).
  void SetUp() override {
    owned_ = v4_like();
    ASSERT_TRUE(
        write_sharded(dir_.path().string(), views(owned_), 8 << 10, {{"format", "pt"}}).ok());
  }
  std::string index_path() const { return dir_.file("model.safetensors.index.json"); }
  void write_index(std::string_view text) { testing::write_file(index_path(), text); }
  Status open_status() { return Checkpoint::open(dir_.path().string()).status(); }

  TempDir dir_;
  std::vector<Owned> owned_;
};

TEST_F(ShardedTest, RoundTrip) {
  auto ck = Checkpoint::open(dir_.path().string());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  expect_holds_all(*ck, owned_);
  // embed (2 KiB) | wq_a (32 KiB) | the rest (under 8 KiB): three shards, each opened once.
  ASSERT_EQ(ck->files().size(), 3u);
  EXPECT_TRUE(fs::exists(dir_.path() / "model-00001-of-00003.safetensors"));
  EXPECT_TRUE(fs::exists(dir_.path() / "model-00003-of-00003.safetensors"));
  EXPECT_EQ(*ck->find("layers.0.attn.wq_a.weight")->file,
            dir_.file("model-00002-of-00003.safetensors"));
  for (const auto& f : ck->files()) EXPECT_EQ(f->metadata().at("format"), "pt");

  const std::string text = testing::read_file(index_path());
  auto index = parse_safetensors_index(text, index_path());
  ASSERT_TRUE(index.ok()) << index.status().to_string();
  ASSERT_TRUE(index->total_size.has_value());
  EXPECT_EQ(*index->total_size, ck->total_bytes());
  EXPECT_EQ(index->weight_map.size(), owned_.size());
  EXPECT_EQ(index->weight_map.at("embed.weight"), "model-00001-of-00003.safetensors");
}

TEST_F(ShardedTest, CheckpointSurvivesMove) {
  auto ck = Checkpoint::open(dir_.path().string());
  ASSERT_TRUE(ck.ok());
  Checkpoint moved = std::move(ck).value();
  expect_holds_all(moved, owned_);
}

TEST_F(ShardedTest, MissingShard) {
  fs::remove(dir_.path() / "model-00002-of-00003.safetensors");
  expect_error(open_status(), StatusCode::kNotFound,
               {index_path(), "shard 'model-00002-of-00003.safetensors' is missing",
                "'layers.0.attn.wq_a.weight'"});
}

TEST_F(ShardedTest, TensorMissingFromItsShard) {
  std::string text = testing::read_file(index_path());
  const std::string key = "\"weight_map\": {";
  text.insert(text.find(key) + key.size(),
              "\"ghost.weight\": \"model-00001-of-00003.safetensors\",");
  write_index(text);
  expect_error(open_status(), StatusCode::kCorrupt,
               {index_path(),
                "tensor 'ghost.weight' is listed in shard "
                "'model-00001-of-00003.safetensors' but",
                "model-00001-of-00003.safetensors does not hold it"});
}

TEST_F(ShardedTest, ShardPathTraversal) {
  write_index(R"({"weight_map": {"embed.weight": "../model-00001-of-00003.safetensors"}})");
  expect_error(open_status(), StatusCode::kCorrupt,
               {index_path(), "tensor 'embed.weight'", "'../model-00001-of-00003.safetensors'",
                "not a plain file name"});
  write_index(R"({"weight_map": {"embed.weight": "/etc/passwd"}})");
  expect_error(open_status(), StatusCode::kCorrupt, {"'/etc/passwd' is not a plain file name"});
  write_index(R"({"weight_map": {"embed.weight": ".."}})");
  expect_error(open_status(), StatusCode::kCorrupt, {"'..' is not a plain file name"});
}

TEST_F(ShardedTest, TensorInTwoShards) {
  // Shard 3 also gets a copy of embed.weight, which the index puts in shard 1.
  const auto& embed = owned_[0];
  std::vector<TensorToWrite> third;
  for (size_t i = 2; i < owned_.size(); ++i) {
    third.push_back({owned_[i].name, owned_[i].dtype, owned_[i].shape, owned_[i].bytes});
  }
  third.push_back({embed.name, embed.dtype, embed.shape, embed.bytes});
  ASSERT_TRUE(write_safetensors(dir_.file("model-00003-of-00003.safetensors"), third).ok());
  expect_error(open_status(), StatusCode::kCorrupt,
               {index_path(), "tensor 'embed.weight' is in two shards",
                "'model-00001-of-00003.safetensors' and 'model-00003-of-00003.safetensors'"});
}

TEST_F(ShardedTest, TensorInShardButNotInIndex) {
  std::vector<TensorToWrite> first = {
      {owned_[0].name, owned_[0].dtype, owned_[0].shape, owned_[0].bytes}};
  const std::byte extra[4] = {};
  first.push_back({"stray.bias", DType::kF32, {1}, extra});
  const std::string shard = dir_.file("model-00001-of-00003.safetensors");
  ASSERT_TRUE(write_safetensors(shard, first).ok());
  expect_error(open_status(), StatusCode::kCorrupt,
               {shard + ": tensor 'stray.bias' is not listed in " + index_path()});
}

TEST_F(ShardedTest, MalformedIndex) {
  write_index("{\"weight_map\": {\"embed.weight\": ");
  expect_error(open_status(), StatusCode::kCorrupt, {index_path(), "not valid JSON"});
  write_index("[]");
  expect_error(open_status(), StatusCode::kCorrupt, {"index is a JSON array, expected an object"});
  write_index(R"({"metadata": {"total_size": 1}})");
  expect_error(open_status(), StatusCode::kCorrupt, {"has no \"weight_map\" object"});
  write_index(R"({"weight_map": {}})");
  expect_error(open_status(), StatusCode::kCorrupt, {"\"weight_map\" lists no tensors"});
  write_index(R"({"weight_map": ["embed.weight"]})");
  expect_error(open_status(), StatusCode::kCorrupt, {"\"weight_map\" is a JSON array"});
  write_index(R"({"weight_map": {"embed.weight": 1}})");
  expect_error(open_status(), StatusCode::kCorrupt,
               {"tensor 'embed.weight' maps to a JSON number, expected a shard file name"});
  write_index(R"({"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}})");
  expect_error(open_status(), StatusCode::kCorrupt, {"tensor 'a' is listed twice in weight_map"});
  write_index(R"({"weight_map": {"a": "x.safetensors"}, "weight_map": {}})");
  expect_error(open_status(), StatusCode::kCorrupt, {"\"weight_map\" appears twice"});
  write_index("{\"weight_map\": {\"a\xff\": \"x.safetensors\"}}");
  expect_error(open_status(), StatusCode::kCorrupt, {"not valid UTF-8 at byte 18"});
  write_index(R"({"metadata": 3, "weight_map": {"a": "x.safetensors"}})");
  expect_error(open_status(), StatusCode::kCorrupt, {"\"metadata\" is a JSON number"});
}

TEST_F(ShardedTest, IndexIgnoresUnknownKeysAndExtraMetadata) {
  std::string text = testing::read_file(index_path());
  text.insert(text.find('{') + 1, R"("other": [[{"x": [1, 2]}], null], )");
  text.insert(text.find("\"metadata\": {") + 13, R"("note": {"deep": [1]}, "v": "1", )");
  write_index(text);
  auto ck = Checkpoint::open(dir_.path().string());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  expect_holds_all(*ck, owned_);
}

TEST_F(ShardedTest, CorruptShardIsNamed) {
  const std::string shard = dir_.file("model-00003-of-00003.safetensors");
  testing::write_file(shard, testing::read_file(shard).substr(0, 100));
  const Status st = open_status();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_EQ(st.message().rfind(shard + ": ", 0), 0u) << st.to_string();
}

TEST(Checkpoint, SingleFileAndDirectory) {
  TempDir dir;
  const auto owned = v4_like();
  const std::string file = dir.file("model.safetensors");
  ASSERT_TRUE(write_safetensors(file, views(owned)).ok());
  for (const std::string& path : {file, dir.path().string()}) {
    auto ck = Checkpoint::open(path);
    ASSERT_TRUE(ck.ok()) << path << ": " << ck.status().to_string();
    EXPECT_EQ(ck->root(), path);
    ASSERT_EQ(ck->files().size(), 1u);
    EXPECT_EQ(ck->files()[0]->path(), file);
    expect_holds_all(*ck, owned);
  }
}

TEST(Checkpoint, NothingThere) {
  TempDir dir;
  expect_error(Checkpoint::open(dir.file("nope")).status(), StatusCode::kNotFound,
               {dir.file("nope"), "no such file or directory"});
  expect_error(Checkpoint::open(dir.path().string()).status(), StatusCode::kNotFound,
               {"holds neither model.safetensors.index.json nor model.safetensors"});
}

TEST(Checkpoint, WriteShardedRejectsBadInput) {
  TempDir dir;
  const std::byte four[4] = {};
  const TensorToWrite t[] = {{"a", DType::kF32, {2}, four}};
  expect_error(write_sharded(dir.path().string(), t, 1024), StatusCode::kInvalidArgument,
               {"tensor 'a'", "needs 8 bytes but 4 were given"});
  expect_error(write_sharded(dir.path().string(), {}, 1024), StatusCode::kInvalidArgument,
               {"no tensors to write"});
  expect_error(write_sharded(dir.path().string(), t, 0), StatusCode::kInvalidArgument,
               {"max_shard_bytes"});
  EXPECT_FALSE(fs::exists(dir.path() / "model.safetensors.index.json"));
}

}  // namespace
}  // namespace frugal::format
