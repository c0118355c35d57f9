#include "model/v4/checkpoint_check.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "format/safetensors.h"
#include "model/v4/synth.h"
#include "support/temp_dir.h"
#include "v4_test_util.h"

namespace frugal::v4 {
namespace {

// A tensor the test owns and may corrupt before writing.
struct Owned {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
};

class V4CheckpointCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.file("checkpoint");
    config_ = testing::tiny_config();
    table_ = std::make_unique<TensorTable>(config_);
    for (SynthTensor& t : synth_tensors(*table_, /*seed=*/7))
      tensors_.push_back({t.spec->name, t.spec->dtype, t.spec->shape, std::move(t.data)});
  }

  Owned& get(const std::string& name) {
    for (Owned& t : tensors_)
      if (t.name == name) return t;
    ADD_FAILURE() << "no tensor " << name;
    return tensors_.front();
  }
  void erase(const std::string& name) {
    std::erase_if(tensors_, [&](const Owned& t) { return t.name == name; });
  }

  // Writes the tensors as a sharded checkpoint in a fresh folder and checks it.
  Status write_and_check(const CheckOptions& options = {}) {
    std::filesystem::remove_all(dir_);
    std::vector<format::TensorToWrite> writes;
    for (const Owned& t : tensors_)
      writes.push_back({.name = t.name, .dtype = t.dtype, .shape = t.shape, .data = t.data});
    Status w = format::write_sharded(dir_, writes, /*max_shard_bytes=*/256 << 10);
    if (!w.ok()) return w;
    auto ck = format::Checkpoint::open(dir_);
    if (!ck.ok()) return ck.status();
    shards_ = ck->files().size();
    return check_checkpoint(*table_, *ck, options);
  }

  test::ScopedTempDir tmp_{"v4-check"};
  std::string dir_;
  DeepSeekV4Config config_;
  std::unique_ptr<TensorTable> table_;
  std::vector<Owned> tensors_;
  size_t shards_ = 0;
};

void expect_has(const Status& s, const std::string& text) {
  EXPECT_NE(s.message().find(text), std::string::npos)
      << "want: " << text << "\ngot: " << s.message();
}

TEST_F(V4CheckpointCheck, SyntheticShardedCheckpointLoadsAndChecks) {
  Status s = write_and_check();
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_GT(shards_, 3u);  // really sharded
}

TEST_F(V4CheckpointCheck, WriteSynthCheckpointRoundTrips) {
  const std::string dir = dir_ + "_synth";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(write_synth_checkpoint(config_, dir, {.seed = 3, .max_shard_bytes = 1 << 20}).ok());
  auto cfg = load_config(dir);
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  EXPECT_EQ(*cfg, config_);
  auto ck = format::Checkpoint::open(dir);
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  EXPECT_EQ(ck->size(), table_->entries().size());
  EXPECT_EQ(ck->total_bytes(), table_->total_bytes());
  Status s = check_checkpoint(*cfg, *ck);
  EXPECT_TRUE(s.ok()) << s.to_string();
  std::filesystem::remove_all(dir);
}

// Two writers of one directory (the race that once broke the test suite: two processes writing
// one fixture): 4 threads write the same config with different seeds into one directory, twice
// each. All succeed, and what is left is one seed's whole checkpoint: every tensor equals that
// seed's bytes, none is another's.
TEST_F(V4CheckpointCheck, ConcurrentSynthWritersLeaveOneWholeCheckpoint) {
  constexpr int kWriters = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int r = 0; r < 2; ++r) {
        const SynthOptions o{.seed = 100 + static_cast<uint64_t>(w), .max_shard_bytes = 1 << 20};
        if (!write_synth_checkpoint(config_, dir_, o).ok()) failures++;
      }
    });
  }
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto ck = format::Checkpoint::open(dir_);
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  EXPECT_TRUE(check_checkpoint(*table_, *ck).ok());
  int matched_seed = -1;
  for (int w = 0; w < kWriters && matched_seed < 0; ++w) {
    const std::vector<SynthTensor> want = synth_tensors(*table_, 100 + w);
    bool all = true;
    for (const SynthTensor& t : want) {
      const format::TensorInfo* got = ck->find(t.spec->name);
      all = all && got != nullptr && got->data.size() == t.data.size() &&
            std::memcmp(got->data.data(), t.data.data(), t.data.size()) == 0;
    }
    if (all) matched_seed = 100 + w;
  }
  EXPECT_GE(matched_seed, 0) << "the directory mixes the writers' tensors";
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp_.path()), {}), 1)
      << "a staging folder was left beside the checkpoint";
}

TEST_F(V4CheckpointCheck, MissingTensor) {
  erase("layers.1.attn.indexer.wq_b.scale");
  Status s = write_and_check();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  expect_has(s, "1 problem\n");
  expect_has(s, "missing tensor 'layers.1.attn.indexer.wq_b.scale' (expected F8_E8M0 [1, 1])");
}

TEST_F(V4CheckpointCheck, WrongDtype) {
  Owned& t = get("layers.0.attn_norm.weight");
  t.dtype = DType::kF32;
  t.data.resize(t.data.size() * 2);
  Status s = write_and_check();
  ASSERT_FALSE(s.ok());
  expect_has(s, "tensor 'layers.0.attn_norm.weight' in ");
  expect_has(s, ".safetensors: dtype F32, expected BF16");
}

TEST_F(V4CheckpointCheck, WrongShape) {
  get("layers.2.attn.compressor.ape").shape = {64, 256};
  Status s = write_and_check();
  ASSERT_FALSE(s.ok());
  expect_has(s, "tensor 'layers.2.attn.compressor.ape' in ");
  expect_has(s, ": shape [64, 256], expected [128, 128]");
}

TEST_F(V4CheckpointCheck, ExtraTensor) {
  tensors_.push_back({"layers.0.attn.bogus", DType::kF32, {4}, std::vector<std::byte>(16)});
  Status s = write_and_check();
  ASSERT_FALSE(s.ok());
  expect_has(s, "unexpected tensor 'layers.0.attn.bogus' in ");
  expect_has(s, "(F32 [4]): not part of a DeepSeek-V4 checkpoint with this config");
}

TEST_F(V4CheckpointCheck, NanScale) {
  Owned& t = get("layers.1.ffn.experts.2.w1.scale");
  ASSERT_GT(t.data.size(), 200u);
  t.data[100] = std::byte{0xff};
  t.data[200] = std::byte{0xff};
  Status s = write_and_check();
  ASSERT_FALSE(s.ok());
  expect_has(s, "tensor 'layers.1.ffn.experts.2.w1.scale' in ");
  expect_has(s, ": e8m0 scale byte 0xff (NaN) at index 100 (2 such bytes)");
  // The same file passes when value scans are off.
  EXPECT_TRUE(write_and_check({.scan_values = false}).ok());
}

TEST_F(V4CheckpointCheck, ExpertIdOutOfRange) {
  Owned& t = get("layers.0.ffn.gate.tid2eid");  // [vocab 320, 2] I64
  const int64_t bad = 4;                        // n_routed_experts = 4
  std::memcpy(t.data.data() + (7 * 2 + 1) * 8, &bad, 8);
  const int64_t negative = -1;
  std::memcpy(t.data.data() + (300 * 2) * 8, &negative, 8);
  Status s = write_and_check();
  ASSERT_FALSE(s.ok());
  expect_has(s, "tensor 'layers.0.ffn.gate.tid2eid' in ");
  expect_has(s, ": expert id 4 at [7, 1] is outside [0, 4) (2 such ids)");
}

TEST_F(V4CheckpointCheck, Int32ExpertIdsAccepted) {
  Owned& t = get("layers.1.ffn.gate.tid2eid");
  std::vector<std::byte> narrow(t.data.size() / 2);
  for (size_t i = 0; i < narrow.size() / 4; ++i) {
    int64_t v = 0;
    std::memcpy(&v, t.data.data() + 8 * i, 8);
    const int32_t v32 = static_cast<int32_t>(v);
    std::memcpy(narrow.data() + 4 * i, &v32, 4);
  }
  t.dtype = DType::kI32;
  t.data = std::move(narrow);
  Status s = write_and_check();
  EXPECT_TRUE(s.ok()) << s.to_string();
}

TEST_F(V4CheckpointCheck, AllProblemsReportedAtOnce) {
  erase("mtp.0.e_proj.weight");
  get("layers.3.attn.wkv.scale").dtype = DType::kI8;
  get("norm.weight").shape = {128, 2};
  tensors_.push_back(
      {"layers.9.attn_norm.weight", DType::kBF16, {256}, std::vector<std::byte>(512)});
  get("mtp.0.attn.wq_a.scale").data[0] = std::byte{0xff};
  const int64_t bad = 99;
  std::memcpy(get("layers.1.ffn.gate.tid2eid").data.data(), &bad, 8);
  Status s = write_and_check();
  ASSERT_FALSE(s.ok());
  expect_has(s, ": 6 problems\n");
  expect_has(s, "missing tensor 'mtp.0.e_proj.weight' (expected F8_E4M3 [256, 256])");
  expect_has(s, "tensor 'layers.3.attn.wkv.scale' in ");
  expect_has(s, ": dtype I8, expected F8_E8M0");
  expect_has(s, ": shape [128, 2], expected [256]");
  expect_has(s, "unexpected tensor 'layers.9.attn_norm.weight' in ");
  expect_has(s, "tensor 'mtp.0.attn.wq_a.scale' in ");  // block 4 is the MTP block
  expect_has(s, ": expert id 99 at [0, 0] is outside [0, 4) (1 such id)");
}

TEST_F(V4CheckpointCheck, ReportIsCapped) {
  for (int e = 0; e < 4; ++e)
    for (const char* w : {"w1", "w2", "w3"})
      erase("layers.2.ffn.experts." + std::to_string(e) + "." + w + ".weight");
  Status s = write_and_check({.max_reported = 5});
  ASSERT_FALSE(s.ok());
  expect_has(s, ": 12 problems\n");
  expect_has(s, "\n  ... and 7 more");
  size_t lines = 0;
  for (char ch : s.message()) lines += ch == '\n';
  EXPECT_EQ(lines, 6u);  // 5 problems + the count line
}

TEST_F(V4CheckpointCheck, Fp8ExpertsWithF32Scales) {
  config_.expert_dtype = ExpertDtype::kFp8;
  table_ = std::make_unique<TensorTable>(config_);
  tensors_.clear();
  for (SynthTensor& t : synth_tensors(*table_, 11))
    tensors_.push_back({t.spec->name, t.spec->dtype, t.spec->shape, std::move(t.data)});
  Owned& scale = get("layers.3.ffn.experts.0.w1.scale");  // [1, 2] e8m0 -> f32
  scale.dtype = DType::kF32;
  scale.data.assign(8, std::byte{0});
  const float one = 1.0f;
  std::memcpy(scale.data.data(), &one, 4);
  std::memcpy(scale.data.data() + 4, &one, 4);
  Status s = write_and_check();
  EXPECT_TRUE(s.ok()) << s.to_string();
  // FP4-shaped experts do not pass as FP8 ones.
  get("layers.3.ffn.experts.0.w2.weight").dtype = DType::kI8;
  s = write_and_check();
  ASSERT_FALSE(s.ok());
  expect_has(s, ": dtype I8, expected F8_E4M3");
}

}  // namespace
}  // namespace frugal::v4
