// DeepSeek-V4 model configuration: the HF `config.json` of the official checkpoints, parsed into a
// typed struct that uses the names of the reference `inference/model.py` (`ModelArgs`), so code
// can be diffed against the reference by eye.
//
// Field mapping (HF config.json -> reference name), architecture doc §1.2:
//   hidden_size -> dim                 num_hidden_layers -> n_layers
//   num_nextn_predict_layers -> n_mtp_layers                num_attention_heads -> n_heads
//   qk_rope_head_dim -> rope_head_dim  sliding_window -> window_size
//   moe_intermediate_size -> moe_inter_dim                  num_experts_per_tok ->
//   n_activated_experts num_hash_layers -> n_hash_layers   scoring_func -> score_func
//   routed_scaling_factor -> route_scale                    rms_norm_eps -> norm_eps
//   rope_scaling.{factor, original_max_position_embeddings, beta_fast, beta_slow}
//     -> rope_factor, original_seq_len, beta_fast, beta_slow
// Unknown fields are errors (a field we do not understand may change the model); a short list of
// HF bookkeeping keys that cannot change the computation is accepted and ignored (config.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace frugal::v4 {

// Attention flavour of one block, from its compress ratio (reference `Attention.__init__`).
enum class AttentionKind : uint8_t {
  kWindow,  // ratio 0: sliding window only (SWA), base rope_theta, no YaRN
  kCsa,     // ratio 4: overlapping compressor + lightning indexer (compressed sparse attention)
  kHca,     // ratio > 4 (128 in the official models): non-overlapping compressor, all entries
};

// Gate score function (reference `Gate.forward`).
enum class ScoreFunc : uint8_t { kSoftmax, kSigmoid, kSqrtSoftplus };

// Storage of the routed experts: FP4 e2m1 packed in I8 with e8m0 1x32 scales (official
// instruct checkpoints), or FP8 e4m3 with 128x128 block scales (the Base checkpoints).
enum class ExpertDtype : uint8_t { kFp4, kFp8 };

// quantization_config.scale_fmt: "ue8m0" = power-of-two activation scales. (The reference forces
// ue8m0 anyway when scale_dtype is fp8, its default; doc §2.A.)
enum class ScaleFmt : uint8_t { kNone, kUe8m0 };

// RoPE parameters of one block (reference `Attention.__init__`: ratio-0 blocks use rope_theta and
// no YaRN, compressed blocks use compress_rope_theta with YaRN when original_seq_len > 0).
struct RopeParams {
  double theta = 10000.0;
  int64_t original_seq_len = 0;  // 0 = YaRN off
  double rope_factor = 1.0;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
};

struct DeepSeekV4Config {
  // ---- model shape (reference ModelArgs names) ----
  int64_t vocab_size = 0;
  int64_t dim = 0;
  int64_t n_layers = 0;
  int64_t n_mtp_layers = 0;
  int64_t n_heads = 0;
  int64_t head_dim = 0;       // width of the single shared KV vector (= K and V)
  int64_t rope_head_dim = 0;  // the LAST rope_head_dim dims of each head carry RoPE
  int64_t q_lora_rank = 0;
  int64_t o_groups = 0;
  int64_t o_lora_rank = 0;
  int64_t window_size = 0;
  std::vector<int64_t> compress_ratios;  // n_layers + n_mtp_layers entries, MTP blocks last
  // ---- rope / yarn ----
  double rope_theta = 10000.0;
  double compress_rope_theta = 10000.0;
  double rope_factor = 1.0;
  int64_t original_seq_len = 0;  // 0 = YaRN off (rope_scaling absent)
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  // ---- lightning indexer ----
  int64_t index_n_heads = 0;
  int64_t index_head_dim = 0;
  int64_t index_topk = 0;
  // ---- hyper-connections ----
  int64_t hc_mult = 0;
  int64_t hc_sinkhorn_iters = 0;
  double hc_eps = 1e-6;
  // ---- MoE ----
  int64_t n_routed_experts = 0;
  int64_t n_shared_experts = 0;
  int64_t n_activated_experts = 0;
  int64_t moe_inter_dim = 0;
  int64_t n_hash_layers = 0;
  ScoreFunc score_func = ScoreFunc::kSqrtSoftplus;
  double route_scale = 1.0;
  bool norm_topk_prob = true;
  double swiglu_limit = 0.0;  // 0 = no clamp
  ExpertDtype expert_dtype = ExpertDtype::kFp4;
  // ---- misc ----
  double norm_eps = 1e-6;
  int64_t max_position_embeddings = 0;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // HF allows one id or a list
  std::optional<int64_t> pad_token_id;
  ScaleFmt scale_fmt = ScaleFmt::kUe8m0;

  // ---- derived ----
  int64_t n_blocks() const { return n_layers + n_mtp_layers; }  // main blocks, then MTP blocks
  bool is_mtp_block(int64_t block) const { return block >= n_layers; }
  int64_t compress_ratio(int64_t block) const;
  AttentionKind attention_kind(int64_t block) const;
  // Hash routing (tid2eid) instead of top-k on gate scores + bias. MTP blocks have
  // block >= n_layers >= n_hash_layers, so they always route by bias (reference `Gate.__init__`).
  bool is_hash_layer(int64_t block) const { return block < n_hash_layers; }
  RopeParams rope_params(int64_t block) const;
  int64_t hc_mix() const { return (2 + hc_mult) * hc_mult; }  // rows of hc_{attn,ffn}_fn
  int64_t hc_dim() const { return hc_mult * dim; }            // flattened stream width
  int64_t nope_head_dim() const { return head_dim - rope_head_dim; }

  bool operator==(const DeepSeekV4Config&) const = default;
};

// Largest config.json we read; the official files are about 2 KB.
inline constexpr size_t kMaxConfigBytes = 1 << 20;

// Parses and validates config.json text. `path` names the source in error messages.
Result<DeepSeekV4Config> parse_config(std::string_view json, std::string_view path = "config.json");

// Reads `path` (a config.json file, or a directory holding one) and parses it.
Result<DeepSeekV4Config> load_config(const std::string& path);

// Checks the cross-field rules on a config built in code (parse_config calls it too).
Status validate_config(const DeepSeekV4Config& config, std::string_view path = "config");

// Writes the config in the official HF field names, so that
// parse_config(config_to_json(c)) == c for every valid c.
std::string config_to_json(const DeepSeekV4Config& config);

std::string_view attention_kind_name(AttentionKind kind);  // "window", "csa", "hca"
std::string_view score_func_name(ScoreFunc f);             // HF spelling, e.g. "sqrtsoftplus"
std::string_view expert_dtype_name(ExpertDtype d);         // "fp4", "fp8"

}  // namespace frugal::v4
