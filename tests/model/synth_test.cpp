// Synthetic checkpoints (model/v4/synth.h): the streamed writer gives the bytes of the in-memory
// generator and of earlier synths, lays each routed expert out as one contiguous run, and the
// skew option orders router biases and hash routing by a per-block popularity.
#include "model/v4/synth.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "format/safetensors.h"
#include "model/v4/checkpoint_check.h"
#include "support/temp_dir.h"
#include "v4_test_util.h"

namespace frugal::v4 {
namespace {

uint64_t fnv1a(uint64_t h, std::span<const std::byte> bytes) {
  for (const std::byte b : bytes) h = (h ^ static_cast<uint8_t>(b)) * 0x100000001b3ull;
  return h;
}

// FNV-1a 64 over every tensor's bytes, tensors in name order.
uint64_t digest(const std::vector<SynthTensor>& tensors) {
  std::vector<const SynthTensor*> sorted;
  for (const SynthTensor& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](const SynthTensor* a, const SynthTensor* b) {
    return a->spec->name < b->spec->name;
  });
  uint64_t h = 0xcbf29ce484222325ull;
  for (const SynthTensor* t : sorted) h = fnv1a(h, t->data);
  return h;
}

bool same_bytes(const format::TensorInfo* got, const std::vector<std::byte>& want) {
  return got != nullptr && got->data.size() == want.size() &&
         std::memcmp(got->data.data(), want.data(), want.size()) == 0;
}

DeepSeekV4Config config_from(const std::string& path) {
  auto c = load_config(path);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return *c;
}

// The digests of the checkpoints the in-memory synth wrote before it streamed (computed from its
// files): the golden logits of tests/fixtures/v4-random depend on these bytes. The fixture's
// config (FP4 experts), the same with FP8 experts, and the shipped tiny model's config.
TEST(Synth, BytesAreThoseOfEarlierSynths) {
  DeepSeekV4Config fixture =
      config_from(std::string(FRUGAL_SOURCE_DIR) + "/tests/fixtures/v4-random/config.json");
  ASSERT_EQ(fixture.expert_dtype, ExpertDtype::kFp4);
  EXPECT_EQ(digest(synth_tensors(TensorTable(fixture), 1)), 0x5b637b3867bbd908ull);
  fixture.expert_dtype = ExpertDtype::kFp8;
  EXPECT_EQ(digest(synth_tensors(TensorTable(fixture), 2)), 0xc86d3fb6a4c488eaull);
  const DeepSeekV4Config tiny =
      config_from(std::string(FRUGAL_SOURCE_DIR) + "/models/tiny-v4/config.json");
  EXPECT_EQ(digest(synth_tensors(TensorTable(tiny), 5)), 0x5a932117432efbb2ull);
}

// The streamed checkpoint holds the in-memory generator's bytes, in shards of the given size,
// passes the checkpoint check, and reports every byte it wrote.
TEST(Synth, StreamedCheckpointHoldsTheGeneratedBytes) {
  const test::ScopedTempDir tmp("synth-stream");
  const DeepSeekV4Config config = testing::tiny_config();
  const TensorTable table(config);
  uint64_t reported = 0;
  const std::string dir = tmp.file("ck");
  ASSERT_TRUE(write_synth_checkpoint(config, dir,
                                     {.seed = 11,
                                      .max_shard_bytes = 256 << 10,
                                      .skew = std::nullopt,
                                      .on_written = [&](uint64_t n) { reported += n; }})
                  .ok());
  EXPECT_EQ(reported, table.total_bytes());
  auto ck = format::Checkpoint::open(dir);
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  EXPECT_GT(ck->files().size(), 3u);
  EXPECT_EQ(ck->size(), table.entries().size());
  const Status check = check_checkpoint(table, *ck);
  EXPECT_TRUE(check.ok()) << check.to_string();
  for (const SynthTensor& t : synth_tensors(table, 11))
    EXPECT_TRUE(same_bytes(ck->find(t.spec->name), t.data)) << t.spec->name;
  EXPECT_EQ(*load_config(dir), config);

  // Same seed, same files; another seed, other bytes.
  const std::string again = tmp.file("again");
  ASSERT_TRUE(
      write_synth_checkpoint(config, again, {.seed = 11, .max_shard_bytes = 256 << 10}).ok());
  auto ck2 = format::Checkpoint::open(again);
  ASSERT_TRUE(ck2.ok());
  ASSERT_EQ(ck2->files().size(), ck->files().size());
  for (size_t i = 0; i < ck->files().size(); ++i) {
    const auto& a = ck->files()[i]->mapping();
    const auto& b = ck2->files()[i]->mapping();
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0) << ck->files()[i]->path();
  }
  const std::vector<SynthTensor> other = synth_tensors(table, 12);
  EXPECT_FALSE(same_bytes(ck->find(other[0].spec->name), other[0].data));
}

// Each routed expert is one contiguous run (w1, w1.scale, w2, w2.scale, w3, w3.scale) in one
// shard, and the experts of a block follow each other, even with shards smaller than a block's
// experts (some split at an expert boundary).
TEST(Synth, RoutedExpertsAreContiguousInTheFile) {
  const test::ScopedTempDir tmp("synth-experts");
  for (const ExpertDtype dtype : {ExpertDtype::kFp4, ExpertDtype::kFp8}) {
    DeepSeekV4Config config = testing::tiny_config();
    config.n_routed_experts = 8;
    config.expert_dtype = dtype;
    const TensorTable table(config);
    const TensorSpec* w1 = table.find(TensorKind::kExpertW1, 0, 0);
    uint64_t expert_bytes = 0;
    for (int k = 0; k < 6; ++k)
      expert_bytes += table.entries()[static_cast<size_t>(w1 - table.entries().data()) + k].bytes();
    const std::string dir = tmp.file(dtype == ExpertDtype::kFp4 ? "fp4" : "fp8");
    // 2.5 experts per shard: every block's experts cross shards.
    ASSERT_TRUE(
        write_synth_checkpoint(config, dir, {.seed = 3, .max_shard_bytes = expert_bytes * 5 / 2})
            .ok());
    auto ck = format::Checkpoint::open(dir);
    ASSERT_TRUE(ck.ok()) << ck.status().to_string();
    const TensorKind kinds[6] = {TensorKind::kExpertW1, TensorKind::kExpertW1Scale,
                                 TensorKind::kExpertW2, TensorKind::kExpertW2Scale,
                                 TensorKind::kExpertW3, TensorKind::kExpertW3Scale};
    int split_blocks = 0;
    for (int32_t b = 0; b < static_cast<int32_t>(config.n_blocks()); ++b) {
      const format::TensorInfo* prev_end = nullptr;  // last tensor of the previous expert
      bool split = false;
      for (int32_t e = 0; e < static_cast<int32_t>(config.n_routed_experts); ++e) {
        const format::TensorInfo* prev = nullptr;
        for (const TensorKind kind : kinds) {
          const format::TensorInfo* t = ck->find(table.find(kind, b, e)->name);
          ASSERT_NE(t, nullptr);
          if (prev != nullptr) {
            EXPECT_EQ(t->file, prev->file) << t->name << ": an expert split across shards";
            EXPECT_EQ(t->offset, prev->offset + prev->size)
                << t->name << " does not follow " << prev->name;
          } else if (prev_end != nullptr && prev_end->file == t->file) {
            EXPECT_EQ(t->offset, prev_end->offset + prev_end->size) << t->name;
          } else if (prev_end != nullptr) {
            split = true;
          }
          prev = t;
        }
        prev_end = prev;
      }
      split_blocks += split;
    }
    EXPECT_GT(split_blocks, 0) << "the shard size did not exercise a split";
  }
}

// --skew: biases -S * kSkewBeta * ln(rank) in each block's popularity order, a different order
// per block; every tensor but the routers' unchanged.
TEST(Synth, SkewOrdersRouterBiasesByPopularity) {
  DeepSeekV4Config config = testing::tiny_config();
  config.n_routed_experts = 16;
  const TensorTable table(config);
  const double skew = 1.25;
  const std::vector<SynthTensor> plain = synth_tensors(table, 9);
  const std::vector<SynthTensor> skewed = synth_tensors(table, 9, skew);
  int biases = 0;
  std::vector<std::vector<int32_t>> orders;
  for (size_t i = 0; i < plain.size(); ++i) {
    const TensorSpec& spec = *plain[i].spec;
    if (spec.kind != TensorKind::kGateBias && spec.kind != TensorKind::kGateTid2eid) {
      EXPECT_EQ(plain[i].data, skewed[i].data) << spec.name << " changed with the skew";
      continue;
    }
    if (spec.kind != TensorKind::kGateBias) continue;
    ++biases;
    std::vector<float> bias(16);
    std::memcpy(bias.data(), skewed[i].data.data(), 64);
    const std::vector<int32_t> order = synth_popularity_order(9, spec.block, 16);
    std::vector<int32_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (int32_t e = 0; e < 16; ++e) ASSERT_EQ(sorted[e], e) << "not a permutation";
    for (size_t r = 0; r < order.size(); ++r) {
      const float want = static_cast<float>(-skew * kSkewBeta * std::log(double(r + 1))) + 0.0f;
      EXPECT_EQ(bias[static_cast<size_t>(order[r])], want) << spec.name << " rank " << r + 1;
      if (r > 0) {
        EXPECT_LT(bias[order[r]], bias[order[r - 1]]);
      }
    }
    EXPECT_FALSE(std::signbit(bias[order[0]]));  // +0, not -0
    orders.push_back(order);
  }
  EXPECT_EQ(biases, 3);  // blocks 2, 3 and the MTP block route by bias
  EXPECT_NE(orders[0], orders[1]);

  // skew 0: zero biases (uniform routing); hash routing keeps the default's bytes.
  for (const SynthTensor& t : synth_tensors(table, 9, 0.0)) {
    if (t.spec->kind == TensorKind::kGateBias) {
      for (const std::byte b : t.data) EXPECT_EQ(b, std::byte{0}) << t.spec->name;
    } else if (t.spec->kind == TensorKind::kGateTid2eid) {
      EXPECT_EQ(t.data, plain[static_cast<size_t>(t.spec - table.entries().data())].data);
    }
  }
}

// --skew on hash routing: each row's ids are distinct and in range, and how often an expert is
// drawn falls with its rank like Zipf without replacement (first draws: exactly rank^-S).
TEST(Synth, SkewedTid2eidFollowsZipf) {
  DeepSeekV4Config config = testing::tiny_config();
  config.vocab_size = 8192;
  config.n_routed_experts = 64;
  config.n_activated_experts = 6;
  const TensorTable table(config);
  const double skew = 1.0;
  for (const SynthTensor& t : synth_tensors(table, 4, skew)) {
    if (t.spec->kind != TensorKind::kGateTid2eid) continue;
    const std::vector<int32_t> order = synth_popularity_order(4, t.spec->block, 64);
    std::vector<int32_t> rank_of(64);
    for (int32_t r = 0; r < 64; ++r) rank_of[static_cast<size_t>(order[r])] = r;
    std::vector<double> first(64), any(64);
    const auto* ids = reinterpret_cast<const int64_t*>(t.data.data());
    for (int64_t row = 0; row < config.vocab_size; ++row) {
      const int64_t* r = ids + row * 6;
      for (int k = 0; k < 6; ++k) {
        ASSERT_GE(r[k], 0);
        ASSERT_LT(r[k], 64);
        for (int j = 0; j < k; ++j) ASSERT_NE(r[j], r[k]) << "row " << row << " repeats an id";
        any[static_cast<size_t>(rank_of[static_cast<size_t>(r[k])])] += 1;
      }
      first[static_cast<size_t>(rank_of[static_cast<size_t>(r[0])])] += 1;
    }
    double norm = 0;
    for (int r = 1; r <= 64; ++r) norm += std::pow(r, -skew);
    for (int r : {1, 2, 4, 8}) {  // first draws: P(rank r) = r^-S / H; within 5 sigma
      const double p = std::pow(r, -skew) / norm;
      const double n = static_cast<double>(config.vocab_size);
      EXPECT_NEAR(first[r - 1] / n, p, 5 * std::sqrt(p * (1 - p) / n)) << "rank " << r;
    }
    // All draws: popularity falls with rank (in octaves of ranks, against noise).
    double prev = 1e300;
    for (int lo = 1; lo < 64; lo *= 2) {
      double sum = 0;
      for (int r = lo; r < 2 * lo; ++r) sum += any[r - 1];
      const double mean = sum / lo;
      EXPECT_LT(mean, prev) << "ranks " << lo << ".." << 2 * lo - 1;
      prev = mean;
    }
    EXPECT_GT(any[0], 10 * any[63]);
  }
}

}  // namespace
}  // namespace frugal::v4
