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

// The byte model behind speculative decoding's projections: one token reads what decode reads;
// n tokens read the non-expert weights once and, per block, the distinct experts n uniform
// picks of n_activated of n_routed select (V4-Flash: 6 of 256, so 2 tokens read 11.86 experts
// on average, 1 - (250/256)^2 = 4.63 % of 256); the MTP step reads one block and the head.
TEST(MemoryPlan, SpeculativeCostsByBytes) {
  const v4::DeepSeekV4Config flash = load("tests/fixtures/configs/deepseek-v4-flash.json");
  const double one = forward_weight_bytes(flash, 1);
  EXPECT_DOUBLE_EQ(one, static_cast<double>(decode_weight_bytes_per_token(flash)));
  const double two = forward_weight_bytes(flash, 2);
  EXPECT_GT(two, one);
  EXPECT_LT(two, 2 * one);
  const double distinct2 = 256.0 * (1.0 - std::pow(250.0 / 256.0, 2));
  EXPECT_NEAR(distinct2, 11.859, 1e-3);
  // (two - one) is (distinct2 - 6) experts of every main block: the same per-expert size as
  // from 3 tokens.
  const double per_expert = (two - one) / (distinct2 - 6);
  const double distinct3 = 256.0 * (1.0 - std::pow(250.0 / 256.0, 3));
  EXPECT_NEAR(forward_weight_bytes(flash, 3), one + (distinct3 - 6) * per_expert, one * 1e-9);
  const SpecCostModel m = spec_cost_by_bytes(flash, 2);
  ASSERT_EQ(m.verify.size(), 4u);
  EXPECT_DOUBLE_EQ(m.verify[1], 1.0);
  EXPECT_GT(m.mtp, 0.0);
  EXPECT_LT(m.mtp, 0.5);  // one block + head of 43 blocks + head
  // The speedup formula: tokens per round over cost per round.
  const SpecCostModel free{.verify = {0, 1, 1, 1}, .mtp = 0};
  EXPECT_DOUBLE_EQ(projected_spec_speedup(free, 1.0, 2), 3.0);
  EXPECT_DOUBLE_EQ(projected_spec_speedup(free, 0.5, 1), 1.5);
  const SpecCostModel paid{.verify = {0, 1, 1.2, 1.5}, .mtp = 0.1};
  EXPECT_DOUBLE_EQ(projected_spec_speedup(paid, 0.8, 2), (1 + 0.8 + 0.64) / (1.5 + 0.2));
  EXPECT_EQ(projected_spec_speedup(paid, 0.8, 3), 0.0);  // k = 3 not in the model
  v4::DeepSeekV4Config no_mtp = flash;
  no_mtp.n_mtp_layers = 0;
  no_mtp.compress_ratios.resize(static_cast<size_t>(no_mtp.n_layers));
  EXPECT_TRUE(spec_cost_by_bytes(no_mtp, 2).verify.empty());
}

}  // namespace
}  // namespace frugal::engine
