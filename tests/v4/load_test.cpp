// Loading a V4 checkpoint through the model loader: corrupt or inconsistent checkpoints fail at
// load with a message naming the file / tensor / field and what was expected.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "format/safetensors.h"
#include "model/v4/model.h"
#include "model/v4/synth.h"
#include "model/v4/tensor_table.h"
#include "support/temp_dir.h"
#include "v4_random.h"

namespace frugal::v4 {
namespace {

using namespace frugal::v4::testing;

DeepSeekV4Config fixture_config() {
  auto c = load_config(fixture_dir() + "/config.json");
  EXPECT_TRUE(c.ok());
  return *c;
}

// Writes the synthetic checkpoint of `config` to a fresh directory, letting `edit` change the
// tensor list first; returns the directory.
std::string write_checkpoint(
    const std::string& name, const DeepSeekV4Config& config,
    const std::function<void(std::vector<format::TensorToWrite>&, const TensorTable&)>& edit) {
  const std::string dir = frugal::test::process_temp_dir().file("v4-load-" + name);
  std::filesystem::remove_all(dir);
  const TensorTable table(config);
  std::vector<SynthTensor> synth = synth_tensors(table, 1);
  std::vector<format::TensorToWrite> tensors;
  for (const SynthTensor& t : synth) {
    tensors.push_back(
        {.name = t.spec->name, .dtype = t.spec->dtype, .shape = t.spec->shape, .data = t.data});
  }
  edit(tensors, table);
  EXPECT_TRUE(format::write_sharded(dir, tensors, 64ull << 20).ok());
  std::ofstream(dir + "/config.json") << config_to_json(config);
  return dir;
}

std::string load_error(const std::string& dir) {
  auto m = Model::load(dir, test_kernels());
  EXPECT_FALSE(m.ok());
  return m.ok() ? "" : m.status().to_string();
}

TEST(V4Load, TheSyntheticCheckpointLoads) {
  const std::string dir = write_checkpoint("ok", fixture_config(), [](auto&, auto&) {});
  auto m = Model::load(dir, test_kernels(), {}, {.max_chunk = 4, .max_seq_len = 64});
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ((*m)->weights().blocks.size(), 5u);
  EXPECT_GT((*m)->scratch_bytes(), 0u);
}

TEST(V4Load, MissingTensor) {
  std::string missing;
  const std::string dir = write_checkpoint("missing", fixture_config(), [&](auto& ts, auto& table) {
    missing = table.find(TensorKind::kWkv, 2)->name;
    std::erase_if(ts, [&](const format::TensorToWrite& t) { return t.name == missing; });
  });
  const std::string err = load_error(dir);
  EXPECT_NE(err.find(missing), std::string::npos) << err;
  EXPECT_NE(err.find("missing"), std::string::npos) << err;
}

TEST(V4Load, WrongShape) {
  std::string name;
  std::vector<std::byte> data;
  const std::string dir = write_checkpoint("shape", fixture_config(), [&](auto& ts, auto& table) {
    name = table.find(TensorKind::kKvNorm, 1)->name;
    for (auto& t : ts) {
      if (t.name != name) continue;
      t.shape = {t.shape[0] + 2};
      data.assign(static_cast<size_t>(t.shape[0]) * 2, std::byte{0x3f});
      t.data = data;
    }
  });
  const std::string err = load_error(dir);
  EXPECT_NE(err.find(name), std::string::npos) << err;
  EXPECT_NE(err.find("194"), std::string::npos) << err;  // the shape found
}

TEST(V4Load, ExpertIdOutOfRange) {
  std::vector<std::byte> data;
  const std::string dir = write_checkpoint("tid2eid", fixture_config(), [&](auto& ts, auto& table) {
    const std::string name = table.find(TensorKind::kGateTid2eid, 0)->name;
    for (auto& t : ts) {
      if (t.name != name) continue;
      data.assign(t.data.begin(), t.data.end());
      const int64_t bad = 8;  // n_routed_experts
      std::memcpy(data.data() + 8 * 17, &bad, 8);
      t.data = data;
    }
  });
  const std::string err = load_error(dir);
  EXPECT_NE(err.find("tid2eid"), std::string::npos) << err;
  EXPECT_NE(err.find("8"), std::string::npos) << err;
}

// The SIMD kernels assume NaN-free FP8 codes, so a NaN e4m3 weight must fail at load.
TEST(V4Load, NanFp8WeightCode) {
  std::vector<std::byte> data;
  std::string name;
  const std::string dir =
      write_checkpoint("nan-e4m3", fixture_config(), [&](auto& ts, auto& table) {
        name = table.find(TensorKind::kWqA, 1)->name;
        for (auto& t : ts) {
          if (t.name != name) continue;
          data.assign(t.data.begin(), t.data.end());
          data[37] = std::byte{0x7f};  // e4m3fn NaN
          t.data = data;
        }
      });
  const std::string err = load_error(dir);
  EXPECT_NE(err.find(name), std::string::npos) << err;
  EXPECT_NE(err.find("NaN"), std::string::npos) << err;
  EXPECT_NE(err.find("element 37"), std::string::npos) << err;
}

TEST(V4Load, UnsupportedRatio) {
  const std::string dir = write_checkpoint("ratio", fixture_config(), [](auto&, auto&) {});
  std::string json = read_text(fixture_dir() + "/config.json");
  const size_t at = json.find("[0, 4, 8, 4, 0]");
  ASSERT_NE(at, std::string::npos);
  json.replace(at, 15, "[0, 4, 3, 4, 0]");
  std::ofstream(dir + "/config.json") << json;
  const std::string err = load_error(dir);
  EXPECT_NE(err.find("compress_ratios"), std::string::npos) << err;
  EXPECT_NE(err.find("3"), std::string::npos) << err;
}

TEST(V4Load, ConfigTheForwardPassCannotRun) {
  DeepSeekV4Config c = fixture_config();
  c.index_head_dim = 96;  // not a power of two: no Hadamard transform
  const Status s = check_model_supported(c);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("index_head_dim 96"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace frugal::v4
