// The V4 cache formats and the sequence cache (src/kv): lossless on cache-exact entries, byte
// sizes of doc §3.1, paged growth, memory report, snapshot/restore, fresh state per sequence.
#include "kv/v4_cache.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/ref/v4_ops.h"
#include "kv/v4_entry.h"
#include "model/v4/config.h"
#include "quant/act_quant.h"
#include "quant/weight.h"

namespace frugal::kv {
namespace {

namespace v4ref = kernels::v4ref;

// A cache-exact main entry: FP8-simulated NoPE dims, bf16-rounded RoPE dims (model/v4/cache.h).
std::vector<float> exact_entry(std::mt19937& rng, int64_t dim, int64_t rope, float spread) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(dim));
  for (int64_t i = 0; i < dim; ++i) v[i] = nd(rng) * std::exp2(spread * nd(rng));
  if (dim > rope) v[0] = 0.0f;  // a zero inside a block
  quant::fp8_simulate(v.data(), dim - rope, 64);
  v4ref::round_bf16(v.data() + dim - rope, rope);
  return v;
}

TEST(V4Entry, SizesMatchTheArchitectureDoc) {
  EXPECT_EQ(EntryCodec(CacheFormat::kFp8, 512, 64).bytes(), 584u);  // 448 + 128 + 7 + 1
  EXPECT_EQ(EntryCodec(CacheFormat::kBf16, 512, 64).bytes(), 1024u);
  EXPECT_EQ(EntryCodec(CacheFormat::kF32, 512, 64).bytes(), 2048u);
  EXPECT_EQ(IndexKeyCodec(CacheFormat::kFp8, 128).bytes(), 68u);  // 64 + 4
  EXPECT_EQ(IndexKeyCodec(CacheFormat::kBf16, 128).bytes(), 256u);
}

TEST(V4Entry, EveryFormatHoldsCacheExactEntriesWithoutLoss) {
  std::mt19937 rng(7);
  for (CacheFormat f : {CacheFormat::kFp8, CacheFormat::kBf16, CacheFormat::kF32}) {
    const EntryCodec codec(f, 512, 64);
    std::vector<std::byte> buf(codec.bytes());
    std::vector<float> back(512);
    for (int trial = 0; trial < 300; ++trial) {
      const float spread = trial < 100 ? 0.0f : (trial < 200 ? 3.0f : 12.0f);
      std::vector<float> v = exact_entry(rng, 512, 64, spread);
      if (trial == 5) std::fill(v.begin(), v.begin() + 64, 0.0f);  // an all-zero block
      if (trial == 6)
        for (int i = 64; i < 128; ++i) v[i] = 1e-7f * (i % 3);  // below the floor
      if (trial == 6) quant::fp8_simulate(v.data() + 64, 64, 64);
      codec.encode(v.data(), buf.data());
      codec.decode(buf.data(), back.data());
      for (int i = 0; i < 512; ++i) ASSERT_EQ(back[i], v[i]) << cache_format_name(f) << " " << i;
    }
  }
}

TEST(V4Entry, Fp4IndexKeysRoundTrip) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const IndexKeyCodec codec(CacheFormat::kFp8, 128);
  std::vector<std::byte> buf(codec.bytes());
  std::vector<float> v(128), back(128);
  for (int trial = 0; trial < 300; ++trial) {
    for (float& x : v) x = nd(rng) * std::exp2(4.0f * nd(rng));
    v4ref::hadamard(v.data(), 128);
    quant::fp4_simulate(v.data(), 128, 32);
    codec.encode(v.data(), buf.data());
    codec.decode(buf.data(), back.data());
    for (int i = 0; i < 128; ++i) ASSERT_EQ(back[i], v[i]) << i;
  }
}

v4::DeepSeekV4Config tiny_config() {
  v4::DeepSeekV4Config c;
  c.n_layers = 3;
  c.n_mtp_layers = 1;
  c.head_dim = 128;
  c.rope_head_dim = 64;
  c.index_head_dim = 64;
  c.window_size = 8;
  c.compress_ratios = {0, 4, 16, 0};
  return c;
}

TEST(V4SequenceCache, GrowsInPagesAndReportsEveryByte) {
  const v4::DeepSeekV4Config c = tiny_config();
  auto cache = V4SequenceCache::create(c, {.format = CacheFormat::kFp8, .page_entries = 4});
  ASSERT_TRUE(cache.ok()) << cache.status().to_string();
  V4SequenceCache& kv = **cache;
  const uint64_t e = kv.entry_bytes();
  EXPECT_EQ(e, 64u + 128u + 1u + 7u);  // 200: 64 e4m3 + 64 bf16 + 1 scale, padded to 8
  const V4MemoryReport r0 = kv.memory_report();
  EXPECT_EQ(r0.window + r0.compressed + r0.index_keys, 0u);
  // state: CSA main [8, 256] + indexer [8, 128], HCA [16, 128], kv + score, f32
  EXPECT_GE(r0.compressor_state, 4u * 2 * (8 * 256 + 8 * 128 + 16 * 128));
  ASSERT_TRUE(kv.reserve(5).ok());
  V4MemoryReport r = kv.memory_report();
  // window: 5 entries -> two pages of 4 in each of the 4 blocks; compressed: CSA 1 entry -> 1 page
  EXPECT_GE(r.window, 4u * 2 * 4 * e);
  EXPECT_LT(r.window, 4u * 2 * 4 * e + 4 * 2 * 128);
  EXPECT_GE(r.compressed, 4u * e);
  EXPECT_GE(r.index_keys, 4u * kv.index_key_bytes());
  EXPECT_GT(r.bookkeeping, 0u);
  ASSERT_TRUE(kv.reserve(100).ok());
  r = kv.memory_report();
  EXPECT_GE(r.window, 4u * 2 * 4 * e);  // the ring stops at window_size = 8 entries
  EXPECT_LT(r.window, 4u * 2 * 4 * e + 4 * 2 * 128);
  EXPECT_EQ(r.total(), r.window + r.compressed + r.index_keys + r.compressor_state + r.bookkeeping);
  kv.clear();
  EXPECT_EQ(kv.memory_report().window, 0u);
}

// A pipeline stage's cache (V4CacheOptions::holds_block, docs/PARALLEL.md): the other stages'
// blocks never grow, and a snapshot of it restores what the stage holds.
TEST(V4SequenceCache, AStageCacheGrowsOnlyItsBlocksAndRoundTrips) {
  const v4::DeepSeekV4Config c = tiny_config();
  auto whole = V4SequenceCache::create(c, {.format = CacheFormat::kFp8, .page_entries = 4});
  auto stage = V4SequenceCache::create(c, {.format = CacheFormat::kFp8,
                                           .page_entries = 4,
                                           .holds_block = [](int64_t b) { return b < 2; }});
  ASSERT_TRUE(whole.ok() && stage.ok());
  ASSERT_TRUE((*whole)->reserve(20).ok());
  ASSERT_TRUE((*stage)->reserve(20).ok());
  const V4MemoryReport w = (*whole)->memory_report(), s = (*stage)->memory_report();
  EXPECT_GT(s.window, 0u);
  EXPECT_LT(s.window, w.window);
  EXPECT_LE(s.compressed + s.index_keys, w.compressed + w.index_keys);
  std::vector<float> kv(static_cast<size_t>(c.head_dim), 0.25f);
  for (int64_t pos = 0; pos < 20; ++pos) (*stage)->store_window(1, pos, kv.data());
  (*stage)->set_length(20);
  (*whole)->set_length(20);
  auto snap = (*stage)->snapshot();
  ASSERT_TRUE(snap.ok()) << snap.status().to_string();
  EXPECT_LT(snap->bytes(), (*whole)->snapshot()->bytes());  // the other blocks hold nothing
  auto copy = V4SequenceCache::create(c, {.format = CacheFormat::kFp8,
                                          .page_entries = 4,
                                          .holds_block = [](int64_t b) { return b < 2; }});
  ASSERT_TRUE(copy.ok());
  ASSERT_TRUE((*copy)->restore(*snap).ok());
  EXPECT_EQ((*copy)->length(), 20);
  std::vector<float> got(static_cast<size_t>(c.head_dim));
  (*copy)->load_window(1, 19, got.data());
  EXPECT_NEAR(got[0], 0.25f, 1e-3f);
}

TEST(V4SequenceCache, ClearRestoresTheInitialCompressorState) {
  auto cache = V4SequenceCache::create(tiny_config());
  ASSERT_TRUE(cache.ok());
  V4SequenceCache& kv = **cache;
  v4::CompressorState st = kv.compressor_state(1, v4::CompressorSlot::kIndexer);
  ASSERT_NE(st.kv_state, nullptr);
  EXPECT_EQ(st.rows, 8);
  EXPECT_EQ(st.cols, 128);
  st.kv_state[3] = 5.0f;
  st.score_state[7] = 1.0f;
  kv.clear();
  EXPECT_EQ(st.kv_state[3], 0.0f);
  EXPECT_EQ(st.score_state[7], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(kv.compressor_state(0, v4::CompressorSlot::kMain).kv_state, nullptr);  // window-only
}

TEST(V4SequenceCache, SnapshotRestoreRoundTrip) {
  const v4::DeepSeekV4Config c = tiny_config();
  auto a = V4SequenceCache::create(c, {.format = CacheFormat::kBf16, .page_entries = 3});
  auto b = V4SequenceCache::create(c, {.format = CacheFormat::kBf16, .page_entries = 5});
  ASSERT_TRUE(a.ok() && b.ok());
  std::mt19937 rng(1);
  ASSERT_TRUE((*a)->reserve(40).ok());
  for (int64_t p = 0; p < 40; ++p) {
    std::vector<float> v = exact_entry(rng, 128, 64, 1.0f);
    (*a)->store_window(0, p, v.data());
    if (p % 4 == 0) (*a)->store_compressed(1, p / 4, v.data());
  }
  (*a)->compressor_state(2, v4::CompressorSlot::kMain).kv_state[11] = 3.0f;
  (*a)->set_length(40);
  auto snap = (*a)->snapshot();
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE((*b)->restore(*snap).ok());
  EXPECT_EQ((*b)->length(), 40);
  std::vector<float> x(128), y(128);
  for (int64_t p = 32; p < 40; ++p) {
    (*a)->load_window(0, p, x.data());
    (*b)->load_window(0, p, y.data());
    EXPECT_EQ(x, y);
  }
  for (int64_t j = 0; j < 10; ++j) {
    (*a)->load_compressed(1, j, x.data());
    (*b)->load_compressed(1, j, y.data());
    EXPECT_EQ(x, y);
  }
  EXPECT_EQ((*b)->compressor_state(2, v4::CompressorSlot::kMain).kv_state[11], 3.0f);
  auto other = V4SequenceCache::create(c, {.format = CacheFormat::kFp8});
  ASSERT_TRUE(other.ok());
  const Status s = (*other)->restore(*snap);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bf16"), std::string::npos);
}

// The scoring matmul reads a tile of indexer keys as a weight matrix in the cache's own format
// (MXFP4 for the compact cache): its rows dequantize to exactly the keys stored, across pages,
// and the tile fits in the f32-sized buffer the caller provides.
TEST(V4SequenceCache, IndexKeyTilesAreTheStoredKeys) {
  const v4::DeepSeekV4Config c = tiny_config();
  const int64_t di = c.index_head_dim;
  const quant::WeightFormat want[] = {quant::WeightFormat::kMXFP4, quant::WeightFormat::kBF16,
                                      quant::WeightFormat::kF32};
  const CacheFormat formats[] = {CacheFormat::kFp8, CacheFormat::kBf16, CacheFormat::kF32};
  for (int f = 0; f < 3; ++f) {
    auto cache = V4SequenceCache::create(c, {.format = formats[f], .page_entries = 3});
    ASSERT_TRUE(cache.ok());
    ASSERT_TRUE((*cache)->reserve(4 * 20).ok());
    std::mt19937 rng(9);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<std::vector<float>> keys;
    for (int64_t j = 0; j < 20; ++j) {
      std::vector<float> k(static_cast<size_t>(di));
      for (float& x : k) x = nd(rng) * std::exp2(3.0f * nd(rng));
      quant::fp4_simulate(k.data(), di, 32);  // cache-exact: what the indexer stores
      (*cache)->store_index_key(1, j, k.data());
      keys.push_back(k);
    }
    const int64_t j0 = 4, n = 11;  // starts inside a page, spans four
    std::vector<std::byte> buf(static_cast<size_t>(n * di * 4) + 64, std::byte{0x5a});
    const quant::WeightView v = (*cache)->load_index_keys(1, j0, n, buf.data());
    EXPECT_EQ(v.format, want[f]) << cache_format_name(formats[f]);
    ASSERT_EQ(v.rows, n);
    ASSERT_EQ(v.cols, di);
    const uint64_t used =
        quant::weight_data_bytes(v.format, n, di) + quant::weight_scale_bytes(v.format, n, di);
    EXPECT_LE(used, static_cast<uint64_t>(n * di * 4));
    for (size_t i = static_cast<size_t>(n * di * 4); i < buf.size(); ++i) {
      ASSERT_EQ(buf[i], std::byte{0x5a}) << "wrote past the buffer";
    }
    std::vector<float> row(static_cast<size_t>(di));
    for (int64_t r = 0; r < n; ++r) {
      quant::dequantize_row(v, r, row.data());
      EXPECT_EQ(row, keys[static_cast<size_t>(j0 + r)])
          << cache_format_name(formats[f]) << " " << r;
    }
  }
}

// The official V4-Flash config: the cache costs what doc §3.1 computes, 3,514 B per token with
// 584-B entries and 68-B FP4 indexer keys (21 CSA x (584 + 68) / 4 + 20 HCA x 584 / 128), plus
// the fixed window (44 blocks x 128 x 584 B) and compressor state (~12 MB).
TEST(V4SequenceCache, FlashCostsWhatTheArchitecturePromises) {
  auto cfg = v4::load_config(std::string(FRUGAL_SOURCE_DIR) +
                             "/tests/fixtures/configs/deepseek-v4-flash.json");
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  auto cache = V4SequenceCache::create(*cfg, {.format = CacheFormat::kFp8, .page_entries = 16});
  ASSERT_TRUE(cache.ok());
  const int64_t tokens = 8192;  // whole pages everywhere: 2048 CSA, 64 HCA entries per layer
  ASSERT_TRUE((*cache)->reserve(tokens).ok());
  const V4MemoryReport r = (*cache)->memory_report();
  EXPECT_EQ(r.compressed + r.index_keys, 21u * 2048 * (584 + 68) + 20u * 64 * 584);
  EXPECT_NEAR(static_cast<double>(r.compressed + r.index_keys) / tokens, 3514.3, 0.1);
  EXPECT_EQ(r.window, 44u * 128 * 584);
  EXPECT_EQ(r.compressor_state, 21u * 4 * (2 * 8 * 1024 + 2 * 8 * 256) + 20u * 4 * 2 * 128 * 512);
  std::printf("V4-Flash, %lld tokens, fp8: %s\n", static_cast<long long>(tokens),
              r.to_string().c_str());
}

}  // namespace
}  // namespace frugal::kv
