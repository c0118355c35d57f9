// The memory plan (engine/memory_plan.h) against the architecture doc §3.1 table and against
// what kv::V4SequenceCache actually allocates after a prefill on the shipped tiny model.
#include "engine/memory_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "engine/engine.h"
#include "model/v4/config.h"
#include "test_model.h"

namespace frugal::engine {
namespace {

const std::string kRoot = FRUGAL_SOURCE_DIR;

v4::DeepSeekV4Config load(const std::string& rel) {
  Result<v4::DeepSeekV4Config> c = v4::load_config(kRoot + "/" + rel);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return *c;
}

// Doc §3.1: V4-Flash 21 CSA x (584/4 + 68/4) + 20 HCA x 584/128 = 3,514 B/token (fp8 entries,
// FP4 indexer keys); bf16 (the reference layout) 6,880. V4-Pro 5,031 and 9,848.
TEST(MemoryPlan, PerTokenMatchesDocTable) {
  const v4::DeepSeekV4Config flash = load("tests/fixtures/configs/deepseek-v4-flash.json");
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(flash, kv::CacheFormat::kFp8), 3514.25);
  EXPECT_EQ(std::floor(kv_bytes_per_token(flash, kv::CacheFormat::kFp8)), 3514.0);
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(flash, kv::CacheFormat::kBf16), 6880.0);
  const v4::DeepSeekV4Config pro = load("tests/fixtures/configs/deepseek-v4-pro.json");
  EXPECT_EQ(std::round(kv_bytes_per_token(pro, kv::CacheFormat::kFp8)), 5031.0);
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(pro, kv::CacheFormat::kBf16), 9848.0);

  const MemoryPlan p = plan_memory(flash, 1 << 20);
  // Same dims under MLA (V3.2 FP8 656 + 132 B per layer) and MHA (bf16 K+V, 64 heads x 512).
  EXPECT_DOUBLE_EQ(p.mla_bytes_per_token, 43.0 * 788.0);
  EXPECT_DOUBLE_EQ(p.mha_bytes_per_token, 43.0 * 2 * 64 * 512 * 2);
  // At 1M tokens the fp8 total is the per-token cost times the context (the paged entries of
  // the growing parts) plus the fixed window ring and compressor state (doc: about 3.70 GB).
  const double grow = static_cast<double>(p.kv_fp8.compressed + p.kv_fp8.index_keys);
  EXPECT_NEAR(grow / (1 << 20), 3514.25, 1.0);
  EXPECT_EQ(p.fixed_state_bytes_fp8, p.kv_fp8.window + p.kv_fp8.compressor_state);
  // Window ring: 44 blocks (43 + MTP) x 128 entries x 584 B (doc: 3.2 MB plus the MTP layer).
  EXPECT_EQ(p.kv_fp8.window, 44u * 128u * 584u);
  // Routed experts are ~94% of the bytes (doc §3.2).
  EXPECT_GT(p.weights_by_kind.at("routed_experts"), p.weights_bytes / 100 * 90);
}

// The plan equals the bytes the cache holds after prefills of several lengths (bookkeeping, the
// cache's own tables, aside), for both cache formats: pages of 16 entries per part and block.
TEST(MemoryPlan, AgreesWithAllocatedCache) {
  EngineOptions eo;
  eo.model_dir = test_model_dir();
  eo.threads = 1;
  eo.max_seq_len = 512;
  eo.load_tokenizer = false;
  eo.progress = false;
  for (kv::CacheFormat f : {kv::CacheFormat::kFp8, kv::CacheFormat::kBf16}) {
    eo.cache = f;
    Result<std::unique_ptr<Engine>> eng = Engine::load(eo);
    ASSERT_TRUE(eng.ok()) << eng.status().to_string();
    const v4::DeepSeekV4Config& c = (*eng)->config();
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));
    for (int64_t n : {1, 37, 300}) {
      Result<std::unique_ptr<kv::V4SequenceCache>> cache = (*eng)->new_cache();
      ASSERT_TRUE(cache.ok());
      std::vector<int32_t> ids(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        ids[static_cast<size_t>(i)] = static_cast<int32_t>(i * 7 % 500 + 3);
      ASSERT_TRUE((*eng)
                      ->model()
                      .forward(**cache,
                               {.ids = ids, .logits_mode = v4::LogitsMode::kLast, .logits = logits})
                      .ok());
      const kv::V4MemoryReport r = (*cache)->memory_report();
      const KvBytes plan = kv_bytes_at(c, f, n);
      SCOPED_TRACE(std::string(kv::cache_format_name(f)) + " n=" + std::to_string(n));
      EXPECT_EQ(r.window, plan.window);
      EXPECT_EQ(r.compressed, plan.compressed);
      EXPECT_EQ(r.index_keys, plan.index_keys);
      EXPECT_EQ(r.compressor_state, plan.compressor_state);
      if (n >= 4) {
        EXPECT_GT(plan.compressed, 0u);
      }
    }
  }
}

// The prefill flop count written out from the shapes of doc §1 (reference module shapes), block
// by block: 2 x (hc_attn_fn + hc_ffn_fn, wq_a, wq_b, wkv, wo_a, wo_b, the compressor's wkv and
// wgate (two halves at ratio 4), the indexer's wq_b, weights_proj and compressor at ratio 4, the
// gate, the shared expert and num_experts_per_tok routed experts).
uint64_t flops_from_shapes(const v4::DeepSeekV4Config& c) {
  uint64_t e = 0;
  for (int64_t b = 0; b < c.n_layers; ++b) {
    const uint64_t d = c.dim, qd = c.n_heads * c.head_dim;
    e += 2 * uint64_t(c.hc_mix()) * c.hc_mult * d;
    e += uint64_t(c.q_lora_rank) * d + qd * c.q_lora_rank + uint64_t(c.head_dim) * d;
    e += uint64_t(c.o_groups) * c.o_lora_rank * (qd / c.o_groups) + d * c.o_groups * c.o_lora_rank;
    const int64_t r = c.compress_ratio(b);
    if (r > 0) e += 2 * uint64_t(r == 4 ? 2 : 1) * c.head_dim * d;
    if (r == 4) {
      e += uint64_t(c.index_n_heads) * c.index_head_dim * c.q_lora_rank;
      e += uint64_t(c.index_n_heads) * d + 2 * uint64_t(2) * c.index_head_dim * d;
    }
    e += uint64_t(c.n_routed_experts) * d;
    e += uint64_t(1 + c.n_activated_experts) * 3 * c.moe_inter_dim * d;
  }
  return 2 * e;
}

TEST(MemoryPlan, PrefillFlopsFollowTheShapes) {
  for (const char* rel :
       {"models/tiny-v4/config.json", "tests/fixtures/configs/deepseek-v4-flash.json",
        "tests/fixtures/configs/deepseek-v4-pro.json"}) {
    const v4::DeepSeekV4Config c = load(rel);
    EXPECT_EQ(prefill_matmul_flops_per_token(c), flops_from_shapes(c)) << rel;
  }
  // V4-Flash: ~13B active parameters per token incl. embedding and head (doc §1); the matmuls
  // of one prompt token, without the 1.06 G embedding and head elements, are ~2 x 11-12 G.
  const double flash = static_cast<double>(
      prefill_matmul_flops_per_token(load("tests/fixtures/configs/deepseek-v4-flash.json")));
  EXPECT_GT(flash, 2 * 10e9);
  EXPECT_LT(flash, 2 * 13e9);
}

}  // namespace
}  // namespace frugal::engine
