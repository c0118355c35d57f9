#include "model/v4/tensor_table.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "v4_test_util.h"

namespace frugal::v4 {
namespace {

using testing::fixture_path;
using testing::read_text;
using Shape = std::vector<int64_t>;

DeepSeekV4Config load(const char* name) {
  auto r = parse_config(read_text(fixture_path(name)));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return *r;
}

void expect_spec(const TensorTable& t, TensorKind kind, int32_t block, int32_t expert,
                 const std::string& name, DType dtype, const Shape& shape) {
  const TensorSpec* s = t.find(kind, block, expert);
  ASSERT_NE(s, nullptr) << name;
  EXPECT_EQ(s->name, name);
  EXPECT_EQ(s->dtype, dtype) << name;
  EXPECT_EQ(s->shape, shape) << name;
  EXPECT_EQ(t.find_name(name), s);
}

// Shapes from the V4-Flash tensor inventory (architecture doc §4.1 example shapes and the full
// listing it cites).
TEST(V4TensorTable, FlashShapesMatchTheCheckpoint) {
  const TensorTable t(load("deepseek-v4-flash.json"));
  const DType f8 = DType::kF8E4M3, e8 = DType::kF8E8M0, bf = DType::kBF16, f32 = DType::kF32;
  expect_spec(t, TensorKind::kWqA, 0, -1, "layers.0.attn.wq_a.weight", f8, {1024, 4096});
  expect_spec(t, TensorKind::kWqAScale, 0, -1, "layers.0.attn.wq_a.scale", e8, {8, 32});
  expect_spec(t, TensorKind::kWqB, 7, -1, "layers.7.attn.wq_b.weight", f8, {32768, 1024});
  expect_spec(t, TensorKind::kWqBScale, 7, -1, "layers.7.attn.wq_b.scale", e8, {256, 8});
  expect_spec(t, TensorKind::kWkv, 1, -1, "layers.1.attn.wkv.weight", f8, {512, 4096});
  expect_spec(t, TensorKind::kWkvScale, 1, -1, "layers.1.attn.wkv.scale", e8, {4, 32});
  expect_spec(t, TensorKind::kWoA, 2, -1, "layers.2.attn.wo_a.weight", f8, {8192, 4096});
  expect_spec(t, TensorKind::kWoAScale, 2, -1, "layers.2.attn.wo_a.scale", e8, {64, 32});
  expect_spec(t, TensorKind::kWoB, 2, -1, "layers.2.attn.wo_b.weight", f8, {4096, 8192});
  expect_spec(t, TensorKind::kWoBScale, 2, -1, "layers.2.attn.wo_b.scale", e8, {32, 64});
  expect_spec(t, TensorKind::kExpertW1, 5, 17, "layers.5.ffn.experts.17.w1.weight", DType::kI8,
              {2048, 2048});
  expect_spec(t, TensorKind::kExpertW1Scale, 5, 17, "layers.5.ffn.experts.17.w1.scale", e8,
              {2048, 128});
  expect_spec(t, TensorKind::kExpertW2, 5, 255, "layers.5.ffn.experts.255.w2.weight", DType::kI8,
              {4096, 1024});
  expect_spec(t, TensorKind::kExpertW2Scale, 5, 255, "layers.5.ffn.experts.255.w2.scale", e8,
              {4096, 64});
  expect_spec(t, TensorKind::kExpertW3, 0, 0, "layers.0.ffn.experts.0.w3.weight", DType::kI8,
              {2048, 2048});
  expect_spec(t, TensorKind::kSharedW1Scale, 4, -1, "layers.4.ffn.shared_experts.w1.scale", e8,
              {16, 32});
  expect_spec(t, TensorKind::kSharedW2, 4, -1, "layers.4.ffn.shared_experts.w2.weight", f8,
              {4096, 2048});
  expect_spec(t, TensorKind::kSharedW2Scale, 4, -1, "layers.4.ffn.shared_experts.w2.scale", e8,
              {32, 16});
  expect_spec(t, TensorKind::kHcAttnFn, 9, -1, "layers.9.hc_attn_fn", f32, {24, 16384});
  expect_spec(t, TensorKind::kHcFfnScale, 9, -1, "layers.9.hc_ffn_scale", f32, {3});
  expect_spec(t, TensorKind::kAttnSink, 9, -1, "layers.9.attn.attn_sink", f32, {64});
  expect_spec(t, TensorKind::kGateTid2eid, 2, -1, "layers.2.ffn.gate.tid2eid", DType::kI64,
              {129280, 6});
  expect_spec(t, TensorKind::kGateBias, 3, -1, "layers.3.ffn.gate.bias", f32, {256});
  expect_spec(t, TensorKind::kGateWeight, 3, -1, "layers.3.ffn.gate.weight", bf, {256, 4096});
  // CSA block 2: overlapping compressor (c = 2) and the indexer.
  expect_spec(t, TensorKind::kCompressorWkv, 2, -1, "layers.2.attn.compressor.wkv.weight", bf,
              {1024, 4096});
  expect_spec(t, TensorKind::kCompressorApe, 2, -1, "layers.2.attn.compressor.ape", f32, {4, 1024});
  expect_spec(t, TensorKind::kCompressorNorm, 2, -1, "layers.2.attn.compressor.norm.weight", bf,
              {512});
  expect_spec(t, TensorKind::kIndexerWqB, 2, -1, "layers.2.attn.indexer.wq_b.weight", f8,
              {8192, 1024});
  expect_spec(t, TensorKind::kIndexerWqBScale, 2, -1, "layers.2.attn.indexer.wq_b.scale", e8,
              {64, 8});
  expect_spec(t, TensorKind::kIndexerWeightsProj, 2, -1,
              "layers.2.attn.indexer.weights_proj.weight", bf, {64, 4096});
  expect_spec(t, TensorKind::kIndexerCompressorWgate, 2, -1,
              "layers.2.attn.indexer.compressor.wgate.weight", bf, {256, 4096});
  expect_spec(t, TensorKind::kIndexerCompressorApe, 2, -1, "layers.2.attn.indexer.compressor.ape",
              f32, {4, 256});
  expect_spec(t, TensorKind::kIndexerCompressorNorm, 2, -1,
              "layers.2.attn.indexer.compressor.norm.weight", bf, {128});
  // HCA block 3: plain compressor (c = 1), no indexer.
  expect_spec(t, TensorKind::kCompressorWgate, 3, -1, "layers.3.attn.compressor.wgate.weight", bf,
              {512, 4096});
  expect_spec(t, TensorKind::kCompressorApe, 3, -1, "layers.3.attn.compressor.ape", f32,
              {128, 512});
  EXPECT_EQ(t.find(TensorKind::kIndexerWqB, 3), nullptr);
  // Window blocks 0-1 and the MTP block 43 have no compressor.
  EXPECT_EQ(t.find(TensorKind::kCompressorWkv, 0), nullptr);
  EXPECT_EQ(t.find(TensorKind::kCompressorNorm, 43), nullptr);
  EXPECT_EQ(t.find(TensorKind::kGateBias, 2), nullptr);
  EXPECT_EQ(t.find(TensorKind::kGateTid2eid, 3), nullptr);
  // Global and MTP tensors.
  expect_spec(t, TensorKind::kEmbed, kNoBlock, -1, "embed.weight", bf, {129280, 4096});
  expect_spec(t, TensorKind::kHead, kNoBlock, -1, "head.weight", bf, {129280, 4096});
  expect_spec(t, TensorKind::kNorm, kNoBlock, -1, "norm.weight", bf, {4096});
  expect_spec(t, TensorKind::kHcHeadFn, kNoBlock, -1, "hc_head_fn", f32, {4, 16384});
  expect_spec(t, TensorKind::kHcHeadScale, kNoBlock, -1, "hc_head_scale", f32, {1});
  expect_spec(t, TensorKind::kNorm, 43, -1, "mtp.0.norm.weight", bf, {4096});
  expect_spec(t, TensorKind::kHcHeadBase, 43, -1, "mtp.0.hc_head_base", f32, {4});
  expect_spec(t, TensorKind::kMtpEProj, 43, -1, "mtp.0.e_proj.weight", f8, {4096, 4096});
  expect_spec(t, TensorKind::kMtpHProjScale, 43, -1, "mtp.0.h_proj.scale", e8, {32, 32});
  expect_spec(t, TensorKind::kMtpEnorm, 43, -1, "mtp.0.enorm.weight", bf, {4096});
  expect_spec(t, TensorKind::kWqA, 43, -1, "mtp.0.attn.wq_a.weight", f8, {1024, 4096});
  expect_spec(t, TensorKind::kGateBias, 43, -1, "mtp.0.ffn.gate.bias", f32, {256});
  expect_spec(t, TensorKind::kExpertW2, 43, 3, "mtp.0.ffn.experts.3.w2.weight", DType::kI8,
              {4096, 1024});
  EXPECT_EQ(t.find(TensorKind::kMtpEProj, 42), nullptr);
  EXPECT_EQ(t.find(TensorKind::kExpertW1, 0, 256), nullptr);
  // 6 global + 44 blocks x 1565 + 41 compressors x 4 + 21 indexers x 7 + 10 MTP-only.
  EXPECT_EQ(t.entries().size(), 69187u);
  // 148.65 GiB: the size of the published V4-Flash safetensors (doc §3.2).
  EXPECT_EQ(t.total_bytes(), 159609485896ull);
}

// The V4-Pro checkpoint holds 145,116 tensors with 861,608,274,846 elements in all and 805.32 GiB
// of data (public inventory of the downloaded files, doc §0 BLOG-GX / CFG-PRO).
TEST(V4TensorTable, ProMatchesThePublishedInventory) {
  const TensorTable t(load("deepseek-v4-pro.json"));
  EXPECT_EQ(t.entries().size(), 145116u);
  uint64_t numel = 0;
  for (const TensorSpec& s : t.entries()) numel += s.numel();
  EXPECT_EQ(numel, 861608274846ull);
  EXPECT_EQ(t.total_bytes(), 864704792696ull);
  const DType f8 = DType::kF8E4M3, e8 = DType::kF8E8M0;
  expect_spec(t, TensorKind::kWqB, 0, -1, "layers.0.attn.wq_b.weight", f8, {65536, 1536});
  expect_spec(t, TensorKind::kWoA, 0, -1, "layers.0.attn.wo_a.weight", f8, {16384, 4096});
  expect_spec(t, TensorKind::kWoAScale, 0, -1, "layers.0.attn.wo_a.scale", e8, {128, 32});
  expect_spec(t, TensorKind::kWoB, 0, -1, "layers.0.attn.wo_b.weight", f8, {7168, 16384});
  expect_spec(t, TensorKind::kWkvScale, 0, -1, "layers.0.attn.wkv.scale", e8, {4, 56});
  expect_spec(t, TensorKind::kExpertW1, 0, 383, "layers.0.ffn.experts.383.w1.weight", DType::kI8,
              {3072, 3584});
  expect_spec(t, TensorKind::kExpertW1Scale, 0, 383, "layers.0.ffn.experts.383.w1.scale", e8,
              {3072, 224});
  expect_spec(t, TensorKind::kExpertW2Scale, 60, 0, "layers.60.ffn.experts.0.w2.scale", e8,
              {7168, 96});
  expect_spec(t, TensorKind::kCompressorApe, 0, -1, "layers.0.attn.compressor.ape", DType::kF32,
              {128, 512});
  expect_spec(t, TensorKind::kMtpEProjScale, 61, -1, "mtp.0.e_proj.scale", e8, {56, 56});
}

// The tensors the official model.py declares for a small config (its state dict, as written by
// shared/tools/official-v4/make_random.py, with ratio-16 HCA blocks and hash routing): every
// name, dtype and shape must match the table, and nothing may be left over on either side.
TEST(V4TensorTable, MatchesTheReferenceStateDict) {
  const TensorTable t(load("reference-tiny.json"));
  std::istringstream listing(read_text(fixture_path("reference-tiny.tensors.txt")));
  std::string line;
  size_t n = 0;
  while (std::getline(listing, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, dtype, dims;
    fields >> name >> dtype >> dims;
    Shape shape;
    std::istringstream ds(dims);
    for (std::string d; std::getline(ds, d, ',');) shape.push_back(std::stoll(d));
    const TensorSpec* s = t.find_name(name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(dtype_safetensors_name(s->dtype).value_or("?"), dtype) << name;
    EXPECT_EQ(s->shape, shape) << name;
    ++n;
  }
  EXPECT_EQ(n, 585u);
  EXPECT_EQ(t.entries().size(), n);
}

TEST(V4TensorTable, NamesAreUniqueAndLookupsConsistent) {
  const DeepSeekV4Config c = testing::tiny_config();
  const TensorTable t(c);
  std::set<std::string> names;
  for (const TensorSpec& s : t.entries()) {
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    EXPECT_EQ(t.find(s.kind, s.block, s.expert), &s) << s.name;
    EXPECT_EQ(s.name, tensor_name(s.kind, s.block, s.expert, c.n_layers));
  }
  EXPECT_EQ(t.find_name("layers.99.attn_norm.weight"), nullptr);
}

TEST(V4TensorTable, Fp8ExpertsForBaseCheckpoints) {
  DeepSeekV4Config c = testing::tiny_config();
  c.expert_dtype = ExpertDtype::kFp8;
  const TensorTable t(c);
  const TensorSpec* w2 = t.find(TensorKind::kExpertW2, 2, 1);
  ASSERT_NE(w2, nullptr);
  EXPECT_EQ(w2->dtype, DType::kF8E4M3);
  EXPECT_EQ(w2->shape, (Shape{256, 96}));
  const TensorSpec* s2 = t.find(TensorKind::kExpertW2Scale, 2, 1);
  ASSERT_NE(s2, nullptr);
  EXPECT_EQ(s2->shape, (Shape{2, 1}));
  EXPECT_TRUE(s2->accepts(DType::kF8E8M0));
  EXPECT_TRUE(s2->accepts(DType::kF32));
  EXPECT_FALSE(s2->accepts(DType::kBF16));
  // Shared experts keep e8m0 scales only.
  EXPECT_FALSE(t.find(TensorKind::kSharedW2Scale, 2)->accepts(DType::kF32));
}

TEST(V4TensorTable, TinyConfigHasEveryKind) {
  const TensorTable t(testing::tiny_config());
  std::set<TensorKind> kinds;
  for (const TensorSpec& s : t.entries()) kinds.insert(s.kind);
  EXPECT_EQ(kinds.size(), static_cast<size_t>(kNumTensorKinds));
}

}  // namespace
}  // namespace frugal::v4
