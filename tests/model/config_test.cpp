#include "model/v4/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "support/temp_dir.h"
#include "v4_test_util.h"

namespace frugal::v4 {
namespace {

using nlohmann::json;
using testing::fixture_path;
using testing::flash_json;
using testing::read_text;

TEST(V4Config, ParsesOfficialFlash) {
  auto r = parse_config(read_text(fixture_path("deepseek-v4-flash.json")), "flash/config.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const DeepSeekV4Config& c = *r;
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(c.dim, 4096);
  EXPECT_EQ(c.n_layers, 43);
  EXPECT_EQ(c.n_mtp_layers, 1);
  EXPECT_EQ(c.n_heads, 64);
  EXPECT_EQ(c.head_dim, 512);
  EXPECT_EQ(c.rope_head_dim, 64);
  EXPECT_EQ(c.q_lora_rank, 1024);
  EXPECT_EQ(c.o_groups, 8);
  EXPECT_EQ(c.o_lora_rank, 1024);
  EXPECT_EQ(c.window_size, 128);
  EXPECT_EQ(c.compress_ratios.size(), 44u);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.compress_rope_theta, 160000.0);
  EXPECT_EQ(c.rope_factor, 16.0);
  EXPECT_EQ(c.original_seq_len, 65536);
  EXPECT_EQ(c.beta_fast, 32.0);
  EXPECT_EQ(c.beta_slow, 1.0);
  EXPECT_EQ(c.index_n_heads, 64);
  EXPECT_EQ(c.index_head_dim, 128);
  EXPECT_EQ(c.index_topk, 512);
  EXPECT_EQ(c.hc_mult, 4);
  EXPECT_EQ(c.hc_sinkhorn_iters, 20);
  EXPECT_EQ(c.hc_eps, 1e-6);
  EXPECT_EQ(c.n_routed_experts, 256);
  EXPECT_EQ(c.n_shared_experts, 1);
  EXPECT_EQ(c.n_activated_experts, 6);
  EXPECT_EQ(c.moe_inter_dim, 2048);
  EXPECT_EQ(c.n_hash_layers, 3);
  EXPECT_EQ(c.score_func, ScoreFunc::kSqrtSoftplus);
  EXPECT_EQ(c.route_scale, 1.5);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.swiglu_limit, 10.0);
  EXPECT_EQ(c.expert_dtype, ExpertDtype::kFp4);  // absent in the file: FP4 experts
  EXPECT_EQ(c.norm_eps, 1e-6);
  EXPECT_EQ(c.max_position_embeddings, 1048576);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{1});
  EXPECT_EQ(c.scale_fmt, ScaleFmt::kUe8m0);
  EXPECT_EQ(c.hc_mix(), 24);
  EXPECT_EQ(c.hc_dim(), 16384);
}

TEST(V4Config, FlashDerivedPerBlock) {
  auto r = parse_config(read_text(fixture_path("deepseek-v4-flash.json")));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const DeepSeekV4Config& c = *r;
  EXPECT_EQ(c.n_blocks(), 44);
  EXPECT_EQ(c.attention_kind(0), AttentionKind::kWindow);
  EXPECT_EQ(c.attention_kind(1), AttentionKind::kWindow);
  EXPECT_EQ(c.attention_kind(2), AttentionKind::kCsa);
  EXPECT_EQ(c.attention_kind(3), AttentionKind::kHca);
  EXPECT_EQ(c.attention_kind(42), AttentionKind::kCsa);
  EXPECT_EQ(c.attention_kind(43), AttentionKind::kWindow);  // the MTP block
  EXPECT_TRUE(c.is_mtp_block(43));
  EXPECT_FALSE(c.is_mtp_block(42));
  EXPECT_TRUE(c.is_hash_layer(0));
  EXPECT_TRUE(c.is_hash_layer(2));
  EXPECT_FALSE(c.is_hash_layer(3));
  EXPECT_FALSE(c.is_hash_layer(43));
  int csa = 0, hca = 0;
  for (int64_t b = 0; b < c.n_layers; ++b) {
    csa += c.attention_kind(b) == AttentionKind::kCsa;
    hca += c.attention_kind(b) == AttentionKind::kHca;
  }
  EXPECT_EQ(csa, 21);
  EXPECT_EQ(hca, 20);
  // Window blocks: base theta, no YaRN; compressed blocks: compress theta with YaRN.
  const RopeParams swa = c.rope_params(0);
  EXPECT_EQ(swa.theta, 10000.0);
  EXPECT_EQ(swa.original_seq_len, 0);
  const RopeParams csa_rope = c.rope_params(2);
  EXPECT_EQ(csa_rope.theta, 160000.0);
  EXPECT_EQ(csa_rope.original_seq_len, 65536);
  EXPECT_EQ(csa_rope.rope_factor, 16.0);
  EXPECT_EQ(c.rope_params(43).original_seq_len, 0);
}

TEST(V4Config, ParsesOfficialPro) {
  auto r = parse_config(read_text(fixture_path("deepseek-v4-pro.json")));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const DeepSeekV4Config& c = *r;
  EXPECT_EQ(c.dim, 7168);
  EXPECT_EQ(c.n_layers, 61);
  EXPECT_EQ(c.n_heads, 128);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.o_groups, 16);
  EXPECT_EQ(c.index_topk, 1024);
  EXPECT_EQ(c.n_routed_experts, 384);
  EXPECT_EQ(c.moe_inter_dim, 3072);
  EXPECT_EQ(c.route_scale, 2.5);
  EXPECT_EQ(c.attention_kind(0), AttentionKind::kHca);
  EXPECT_EQ(c.attention_kind(1), AttentionKind::kHca);
  EXPECT_EQ(c.attention_kind(60), AttentionKind::kCsa);
  EXPECT_EQ(c.attention_kind(61), AttentionKind::kWindow);
}

TEST(V4Config, JsonRoundTrip) {
  for (const char* name : {"deepseek-v4-flash.json", "deepseek-v4-pro.json"}) {
    auto a = parse_config(read_text(fixture_path(name)));
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    auto b = parse_config(config_to_json(*a), "roundtrip");
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    EXPECT_EQ(*a, *b) << name;
  }
  DeepSeekV4Config tiny = testing::tiny_config();
  tiny.expert_dtype = ExpertDtype::kFp8;
  tiny.scale_fmt = ScaleFmt::kNone;
  tiny.eos_token_ids = {1, 2};
  auto t = parse_config(config_to_json(tiny));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(*t, tiny);
}

TEST(V4Config, LoadFromDirectoryAndFile) {
  const test::ScopedTempDir tmp("v4-config");
  const std::string dir = tmp.str();
  std::ofstream(dir + "/config.json") << read_text(fixture_path("deepseek-v4-pro.json"));
  auto from_dir = load_config(dir);
  ASSERT_TRUE(from_dir.ok()) << from_dir.status().to_string();
  EXPECT_EQ(from_dir->dim, 7168);
  auto from_file = load_config(dir + "/config.json");
  ASSERT_TRUE(from_file.ok());
  EXPECT_EQ(*from_dir, *from_file);
  auto missing = load_config(dir + "/nope.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_NE(missing.status().message().find("nope.json"), std::string::npos);
}

TEST(V4Config, OptionalFieldsTakeReferenceDefaults) {
  json j = flash_json();
  for (const char* k :
       {"rope_scaling", "hc_eps", "swiglu_limit", "num_hash_layers", "bos_token_id", "eos_token_id",
        "transformers_version", "use_cache", "torch_dtype", "initializer_range",
        "attention_dropout", "hidden_act", "topk_method", "num_key_value_heads", "attention_bias",
        "tie_word_embeddings", "norm_topk_prob"})
    j.erase(k);
  auto r = parse_config(j.dump());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->original_seq_len, 0);  // YaRN off
  EXPECT_EQ(r->hc_eps, 1e-6);
  EXPECT_EQ(r->swiglu_limit, 0.0);
  EXPECT_EQ(r->n_hash_layers, 0);
  EXPECT_FALSE(r->bos_token_id.has_value());
  EXPECT_TRUE(r->eos_token_ids.empty());
  j["expert_dtype"] = "fp8";
  j["rope_scaling"] = nullptr;
  auto fp8 = parse_config(j.dump());
  ASSERT_TRUE(fp8.ok()) << fp8.status().to_string();
  EXPECT_EQ(fp8->expert_dtype, ExpertDtype::kFp8);
}

// One bad edit of the official Flash config and the message it must produce.
struct BadCase {
  const char* what;
  std::function<void(json&)> edit;
  const char* message;
  StatusCode code;
};

TEST(V4Config, EachErrorNamesTheField) {
  const StatusCode kInv = StatusCode::kInvalidArgument;
  const StatusCode kUns = StatusCode::kUnsupported;
  const BadCase cases[] = {
      {"missing field", [](json& j) { j.erase("hc_mult"); }, "missing required field 'hc_mult'",
       StatusCode::kNotFound},
      {"missing nested", [](json& j) { j["quantization_config"].erase("weight_block_size"); },
       "missing required field 'quantization_config.weight_block_size'", StatusCode::kNotFound},
      {"string for int", [](json& j) { j["hidden_size"] = "4096"; },
       "field 'hidden_size': expected an integer, found a string", kInv},
      {"float for int", [](json& j) { j["num_hidden_layers"] = 43.0; },
       "field 'num_hidden_layers': expected an integer, found a floating-point number", kInv},
      {"bool type", [](json& j) { j["norm_topk_prob"] = 1; },
       "field 'norm_topk_prob': expected true or false, found an integer", kInv},
      {"number type", [](json& j) { j["rope_theta"] = "10000"; },
       "field 'rope_theta': expected a number, found a string", kInv},
      {"huge int", [](json& j) { j["vocab_size"] = 18446744073709551615ull; },
       "field 'vocab_size': integer 18446744073709551615 is out of range", kInv},
      {"unknown field", [](json& j) { j["foo_bar"] = 1; }, "unknown field 'foo_bar'", kUns},
      {"hostile key", [](json& j) { j[std::string("a\x01") + std::string(200, 'k')] = 1; },
       "unknown field 'a\\x01kkkk", kUns},
      {"unknown nested field", [](json& j) { j["rope_scaling"]["mscale"] = 1.0; },
       "unknown field 'rope_scaling.mscale'", kUns},
      {"dspark field", [](json& j) { j["dspark_block_size"] = 5; }, "DSpark", kUns},
      {"harmless key wrong type", [](json& j) { j["use_cache"] = "yes"; },
       "field 'use_cache': unexpected type a string", kInv},
      {"model_type", [](json& j) { j["model_type"] = "deepseek_v3"; },
       "field 'model_type': unsupported value \"deepseek_v3\" (expected \"deepseek_v4\")", kUns},
      {"architectures", [](json& j) { j["architectures"] = {"DeepseekV3ForCausalLM"}; },
       "field 'architectures': unsupported architecture \"DeepseekV3ForCausalLM\"", kUns},
      {"architectures shape", [](json& j) { j["architectures"] = "DeepseekV4ForCausalLM"; },
       "field 'architectures': expected [\"DeepseekV4ForCausalLM\"]", kInv},
      {"ratios length", [](json& j) { j["compress_ratios"].erase(0); },
       "field 'compress_ratios': expected 44 entries (num_hidden_layers 43 + "
       "num_nextn_predict_layers 1), found 43",
       kInv},
      {"ratios vs mtp", [](json& j) { j["num_nextn_predict_layers"] = 2; }, "expected 45 entries",
       kInv},
      {"ratio value", [](json& j) { j["compress_ratios"][5] = 2; },
       "field 'compress_ratios[5]': unsupported ratio 2", kUns},
      {"ratio type", [](json& j) { j["compress_ratios"][5] = "4"; },
       "field 'compress_ratios[5]': expected an integer, found a string", kInv},
      {"rope > head_dim", [](json& j) { j["qk_rope_head_dim"] = 576; },
       "field 'qk_rope_head_dim (rope_head_dim)': expected an even value below head_dim 512", kInv},
      {"rope odd", [](json& j) { j["qk_rope_head_dim"] = 63; }, "qk_rope_head_dim", kInv},
      {"head_dim", [](json& j) { j["head_dim"] = 500; },
       "field 'head_dim': expected a multiple of 64, found 500", kInv},
      {"o_groups", [](json& j) { j["o_groups"] = 7; },
       "field 'o_groups': num_attention_heads 64 is not divisible by o_groups 7", kInv},
      {"top-k > experts", [](json& j) { j["num_experts_per_tok"] = 300; },
       "field 'num_experts_per_tok (n_activated_experts)': value 300 is out of range [1, 256]",
       kInv},
      {"hash layers", [](json& j) { j["num_hash_layers"] = 44; },
       "field 'num_hash_layers (n_hash_layers)': value 44 is out of range [0, 43]", kInv},
      {"zero size", [](json& j) { j["hidden_size"] = 0; },
       "field 'hidden_size (dim)': value 0 is out of range", kInv},
      {"negative size", [](json& j) { j["q_lora_rank"] = -1; }, "field 'q_lora_rank'", kInv},
      {"hc_mult", [](json& j) { j["hc_mult"] = 0; }, "field 'hc_mult': value 0", kInv},
      {"shared experts", [](json& j) { j["n_shared_experts"] = 2; },
       "field 'n_shared_experts': expected 1, found 2", kUns},
      {"index_head_dim", [](json& j) { j["index_head_dim"] = 96; }, "field 'index_head_dim'", kInv},
      {"kv heads", [](json& j) { j["num_key_value_heads"] = 8; },
       "field 'num_key_value_heads': expected 1", kInv},
      {"tied", [](json& j) { j["tie_word_embeddings"] = true; }, "field 'tie_word_embeddings'",
       kInv},
      {"act", [](json& j) { j["hidden_act"] = "gelu"; }, "field 'hidden_act'", kUns},
      {"topk method", [](json& j) { j["topk_method"] = "greedy"; }, "field 'topk_method'", kUns},
      {"score func", [](json& j) { j["scoring_func"] = "relu"; },
       "field 'scoring_func': unsupported value \"relu\"", kUns},
      {"norm_topk_prob", [](json& j) { j["norm_topk_prob"] = false; },
       "field 'norm_topk_prob': expected true with scoring_func \"sqrtsoftplus\"", kUns},
      {"expert dtype", [](json& j) { j["expert_dtype"] = "int4"; }, "field 'expert_dtype'", kUns},
      {"fp4 dims", [](json& j) { j["moe_intermediate_size"] = 2040; },
       "expected a multiple of 32 for FP4 experts", kInv},
      {"eps", [](json& j) { j["rms_norm_eps"] = -1e-6; },
       "field 'rms_norm_eps (norm_eps)': expected a finite number > 0", kInv},
      {"eos", [](json& j) { j["eos_token_id"] = 129280; },
       "field 'eos_token_id': value 129280 is out of range [0, 129279]", kInv},
      {"pad", [](json& j) { j["pad_token_id"] = -1; },
       "field 'pad_token_id': value -1 is out of range [0, 129279]", kInv},
      {"quant method", [](json& j) { j["quantization_config"]["quant_method"] = "awq"; },
       "field 'quantization_config.quant_method': unsupported value \"awq\"", kUns},
      {"block size",
       [](json& j) {
         j["quantization_config"]["weight_block_size"] = {64, 64};
       },
       "field 'quantization_config.weight_block_size': expected [128, 128]", kUns},
      {"quant extra", [](json& j) { j["quantization_config"]["group_size"] = 32; },
       "unknown field 'quantization_config.group_size'", kUns},
      {"no quant", [](json& j) { j.erase("quantization_config"); },
       "missing required field 'quantization_config'", StatusCode::kNotFound},
      {"yarn type", [](json& j) { j["rope_scaling"]["type"] = "linear"; },
       "field 'rope_scaling.type': unsupported value \"linear\"", kUns},
      {"yarn betas", [](json& j) { j["rope_scaling"]["beta_fast"] = 0.5; },
       "field 'rope_scaling.beta_fast': expected beta_fast > beta_slow", kInv},
      {"rope_scaling type", [](json& j) { j["rope_scaling"] = 16; },
       "field 'rope_scaling': expected an object, found an integer", kInv},
  };
  for (const BadCase& bad : cases) {
    json j = flash_json();
    bad.edit(j);
    auto r = parse_config(j.dump(), "m/config.json");
    ASSERT_FALSE(r.ok()) << bad.what;
    EXPECT_EQ(r.status().code(), bad.code) << bad.what << ": " << r.status().to_string();
    EXPECT_NE(r.status().message().find(bad.message), std::string::npos)
        << bad.what << ": got " << r.status().message();
    EXPECT_EQ(r.status().message().rfind("m/config.json: ", 0), 0u) << r.status().message();
  }
}

TEST(V4Config, RejectsBadText) {
  auto not_json = parse_config("{\"hidden_size\": 4096,", "x.json");
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.status().message(), "x.json: not valid JSON");
  auto array = parse_config("[1, 2]", "x.json");
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.status().message(), "x.json: expected a JSON object, found an array");
  std::string dup = read_text(fixture_path("deepseek-v4-flash.json"));
  dup.insert(dup.find('{') + 1, "\"hidden_size\": 7168,");
  auto twice = parse_config(dup, "x.json");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().message(), "x.json: field 'hidden_size' appears twice");
  std::string deep;
  for (int i = 0; i < 50000; ++i) deep += "{\"a\":";
  deep += '1';
  deep.append(50000, '}');
  auto nested = parse_config(deep, "x.json");  // must not overflow the stack
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.status().message(), "x.json: missing required field 'architectures'");
  auto huge = parse_config(std::string(kMaxConfigBytes + 1, ' '), "x.json");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace frugal::v4
