// Helpers shared by the V4 model tests: fixture configs, and a tiny config that has every tensor
// kind (window, CSA and HCA blocks, hash and bias routing, an MTP block).
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "model/v4/config.h"

namespace frugal::v4::testing {

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string fixture_path(const std::string& name) {
  return std::string(FRUGAL_SOURCE_DIR) + "/tests/fixtures/configs/" + name;
}

inline nlohmann::json flash_json() {
  return nlohmann::json::parse(read_text(fixture_path("deepseek-v4-flash.json")));
}

// Small enough to write and check in milliseconds; block 0-1 hash-routed, blocks 0 window,
// 1 CSA, 2 HCA, 3 window, MTP block 4 window.
inline DeepSeekV4Config tiny_config() {
  DeepSeekV4Config c;
  c.vocab_size = 320;
  c.dim = 256;
  c.n_layers = 4;
  c.n_mtp_layers = 1;
  c.n_heads = 4;
  c.head_dim = 128;
  c.rope_head_dim = 64;
  c.q_lora_rank = 96;  // not a multiple of 128: partial scale blocks
  c.o_groups = 2;
  c.o_lora_rank = 64;
  c.window_size = 16;
  c.compress_ratios = {0, 4, 128, 0, 0};
  c.rope_theta = 10000;
  c.compress_rope_theta = 160000;
  c.rope_factor = 16;
  c.original_seq_len = 64;
  c.index_n_heads = 2;
  c.index_head_dim = 64;
  c.index_topk = 4;
  c.hc_mult = 4;
  c.hc_sinkhorn_iters = 20;
  c.n_routed_experts = 4;
  c.n_shared_experts = 1;
  c.n_activated_experts = 2;
  c.moe_inter_dim = 96;
  c.n_hash_layers = 2;
  c.route_scale = 1.5;
  c.swiglu_limit = 10;
  c.max_position_embeddings = 4096;
  c.bos_token_id = 0;
  c.eos_token_ids = {1};
  return c;
}

}  // namespace frugal::v4::testing
