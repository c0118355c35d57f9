// Cross-field rules of DeepSeekV4Config, derived per-block properties, and the HF JSON writer.
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "model/v4/config.h"

namespace frugal::v4 {
namespace {

// Bounds far above the official models (Pro: dim 7168, 61 layers, 384 experts, vocab 129280)
// that keep every derived size and tensor byte count far from int64 overflow.
constexpr int64_t kMaxDim = 1 << 16;
constexpr int64_t kMaxVocab = 1 << 24;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxMtpLayers = 16;
constexpr int64_t kMaxHeads = 1024;
constexpr int64_t kMaxExperts = 4096;
constexpr int64_t kMaxRatio = 4096;
constexpr int64_t kMaxPositions = int64_t{1} << 30;

bool is_pow2(int64_t x) { return x > 0 && (x & (x - 1)) == 0; }

// Errors name the config.json field, with the reference name where it differs.
class Rules {
 public:
  explicit Rules(std::string_view path) : path_(path) {}

  Status fail(std::string_view field, const std::string& what,
              StatusCode code = StatusCode::kInvalidArgument) const {
    return Status(code, std::string(path_) + ": field '" + std::string(field) + "': " + what);
  }
  Status range(std::string_view field, int64_t v, int64_t lo, int64_t hi) const {
    if (v >= lo && v <= hi) return ok_status();
    return fail(field, "value " + std::to_string(v) + " is out of range [" + std::to_string(lo) +
                           ", " + std::to_string(hi) + "]");
  }
  Status positive(std::string_view field, double v) const {
    if (std::isfinite(v) && v > 0) return ok_status();
    return fail(field, "expected a finite number > 0, found " + std::to_string(v));
  }
  Status non_negative(std::string_view field, double v) const {
    if (std::isfinite(v) && v >= 0) return ok_status();
    return fail(field, "expected a finite number >= 0, found " + std::to_string(v));
  }

 private:
  std::string_view path_;
};

Status check_sizes(const DeepSeekV4Config& c, const Rules& r) {
  FRUGAL_RETURN_IF_ERROR(r.range("vocab_size", c.vocab_size, 1, kMaxVocab));
  FRUGAL_RETURN_IF_ERROR(r.range("hidden_size (dim)", c.dim, 1, kMaxDim));
  FRUGAL_RETURN_IF_ERROR(r.range("num_hidden_layers (n_layers)", c.n_layers, 1, kMaxLayers));
  FRUGAL_RETURN_IF_ERROR(
      r.range("num_nextn_predict_layers (n_mtp_layers)", c.n_mtp_layers, 0, kMaxMtpLayers));
  FRUGAL_RETURN_IF_ERROR(r.range("num_attention_heads (n_heads)", c.n_heads, 1, kMaxHeads));
  FRUGAL_RETURN_IF_ERROR(r.range("head_dim", c.head_dim, 64, kMaxDim));
  FRUGAL_RETURN_IF_ERROR(r.range("q_lora_rank", c.q_lora_rank, 1, kMaxDim));
  FRUGAL_RETURN_IF_ERROR(r.range("o_groups", c.o_groups, 1, c.n_heads));
  FRUGAL_RETURN_IF_ERROR(r.range("o_lora_rank", c.o_lora_rank, 1, kMaxDim));
  FRUGAL_RETURN_IF_ERROR(r.range("sliding_window (window_size)", c.window_size, 1, kMaxPositions));
  FRUGAL_RETURN_IF_ERROR(r.range("index_n_heads", c.index_n_heads, 1, kMaxHeads));
  FRUGAL_RETURN_IF_ERROR(r.range("index_head_dim", c.index_head_dim, 32, kMaxDim));
  FRUGAL_RETURN_IF_ERROR(r.range("index_topk", c.index_topk, 1, kMaxPositions));
  FRUGAL_RETURN_IF_ERROR(r.range("hc_mult", c.hc_mult, 1, 16));
  FRUGAL_RETURN_IF_ERROR(r.range("hc_sinkhorn_iters", c.hc_sinkhorn_iters, 1, 1000));
  FRUGAL_RETURN_IF_ERROR(r.range("n_routed_experts", c.n_routed_experts, 1, kMaxExperts));
  FRUGAL_RETURN_IF_ERROR(r.range("num_experts_per_tok (n_activated_experts)", c.n_activated_experts,
                                 1, c.n_routed_experts));
  FRUGAL_RETURN_IF_ERROR(
      r.range("moe_intermediate_size (moe_inter_dim)", c.moe_inter_dim, 1, 2 * kMaxDim));
  FRUGAL_RETURN_IF_ERROR(
      r.range("num_hash_layers (n_hash_layers)", c.n_hash_layers, 0, c.n_layers));
  FRUGAL_RETURN_IF_ERROR(
      r.range("max_position_embeddings", c.max_position_embeddings, 1, kMaxPositions));
  if (c.n_shared_experts != 1)  // reference MoE.__init__: assert args.n_shared_experts == 1
    return r.fail("n_shared_experts", "expected 1, found " + std::to_string(c.n_shared_experts),
                  StatusCode::kUnsupported);
  return ok_status();
}

Status check_attention(const DeepSeekV4Config& c, const Rules& r) {
  // head_dim: the FP8 KV simulation quantizes the non-rope dims in blocks of 64 (doc §2.A).
  if (c.head_dim % 64 != 0)
    return r.fail("head_dim", "expected a multiple of 64, found " + std::to_string(c.head_dim));
  const int64_t rope = c.rope_head_dim;
  if (rope <= 0 || rope >= c.head_dim || rope % 2 != 0 || (c.head_dim - rope) % 64 != 0)
    return r.fail("qk_rope_head_dim (rope_head_dim)",
                  "expected an even value below head_dim " + std::to_string(c.head_dim) +
                      " that leaves a multiple of 64 non-rope dims, found " + std::to_string(rope));
  if (c.n_heads % c.o_groups != 0)
    return r.fail("o_groups", "num_attention_heads " + std::to_string(c.n_heads) +
                                  " is not divisible by o_groups " + std::to_string(c.o_groups));
  // Indexer heads: Hadamard rotation needs a power of two, FP4 simulation blocks of 32, RoPE on
  // the last rope_head_dim dims (doc §2.5).
  if (!is_pow2(c.index_head_dim) || c.index_head_dim < rope)
    return r.fail("index_head_dim", "expected a power of two >= qk_rope_head_dim " +
                                        std::to_string(rope) + ", found " +
                                        std::to_string(c.index_head_dim));
  const size_t want = static_cast<size_t>(c.n_layers + c.n_mtp_layers);
  if (c.compress_ratios.size() != want)
    return r.fail("compress_ratios",
                  "expected " + std::to_string(want) + " entries (num_hidden_layers " +
                      std::to_string(c.n_layers) + " + num_nextn_predict_layers " +
                      std::to_string(c.n_mtp_layers) + "), found " +
                      std::to_string(c.compress_ratios.size()));
  for (size_t i = 0; i < c.compress_ratios.size(); ++i) {
    const int64_t ratio = c.compress_ratios[i];
    // 0: window only; 4: CSA (overlapping compressor + indexer); > 4: HCA. The reference runs
    // any HCA ratio (the official models use 128; small test models use e.g. 16).
    if (ratio == 0 || ratio == 4 || (ratio > 4 && ratio <= kMaxRatio)) continue;
    return r.fail("compress_ratios[" + std::to_string(i) + "]",
                  "unsupported ratio " + std::to_string(ratio) +
                      " (expected 0 = window, 4 = CSA, or 5.." + std::to_string(kMaxRatio) +
                      " = HCA)",
                  StatusCode::kUnsupported);
  }
  return ok_status();
}

Status check_numbers(const DeepSeekV4Config& c, const Rules& r) {
  FRUGAL_RETURN_IF_ERROR(r.positive("rope_theta", c.rope_theta));
  FRUGAL_RETURN_IF_ERROR(r.positive("compress_rope_theta", c.compress_rope_theta));
  FRUGAL_RETURN_IF_ERROR(r.positive("routed_scaling_factor (route_scale)", c.route_scale));
  FRUGAL_RETURN_IF_ERROR(r.non_negative("swiglu_limit", c.swiglu_limit));
  FRUGAL_RETURN_IF_ERROR(r.positive("rms_norm_eps (norm_eps)", c.norm_eps));
  FRUGAL_RETURN_IF_ERROR(r.non_negative("hc_eps", c.hc_eps));
  if (c.norm_eps >= 1) return r.fail("rms_norm_eps (norm_eps)", "expected a value below 1");
  if (c.hc_eps >= 1) return r.fail("hc_eps", "expected a value below 1");
  FRUGAL_RETURN_IF_ERROR(r.range("rope_scaling.original_max_position_embeddings (original_seq_len)",
                                 c.original_seq_len, 0, kMaxPositions));
  FRUGAL_RETURN_IF_ERROR(r.positive("rope_scaling.factor (rope_factor)", c.rope_factor));
  FRUGAL_RETURN_IF_ERROR(r.positive("rope_scaling.beta_fast", c.beta_fast));
  FRUGAL_RETURN_IF_ERROR(r.positive("rope_scaling.beta_slow", c.beta_slow));
  // YaRN's correction range (reference find_correction_range) runs from beta_fast down to
  // beta_slow rotations; swapped betas would invert the ramp.
  if (c.original_seq_len > 0 && c.beta_fast <= c.beta_slow)
    return r.fail("rope_scaling.beta_fast", "expected beta_fast > beta_slow");
  return ok_status();
}

Status check_moe_and_tokens(const DeepSeekV4Config& c, const Rules& r) {
  // The reference renormalizes the routing weights exactly when score_func != softmax
  // (Gate.forward); a config asking for anything else cannot be run as written.
  const bool renorm = c.score_func != ScoreFunc::kSoftmax;
  if (c.norm_topk_prob != renorm)
    return r.fail("norm_topk_prob",
                  std::string("expected ") + (renorm ? "true" : "false") + " with scoring_func \"" +
                      std::string(score_func_name(c.score_func)) + "\"",
                  StatusCode::kUnsupported);
  // FP4 experts: two values per byte and one e8m0 scale per 32 inputs (w1/w3 read dim inputs,
  // w2 reads moe_inter_dim inputs).
  if (c.expert_dtype == ExpertDtype::kFp4) {
    if (c.dim % 32 != 0)
      return r.fail("hidden_size (dim)",
                    "expected a multiple of 32 for FP4 experts, found " + std::to_string(c.dim));
    if (c.moe_inter_dim % 32 != 0)
      return r.fail(
          "moe_intermediate_size (moe_inter_dim)",
          "expected a multiple of 32 for FP4 experts, found " + std::to_string(c.moe_inter_dim));
  }
  if (c.bos_token_id)
    FRUGAL_RETURN_IF_ERROR(r.range("bos_token_id", *c.bos_token_id, 0, c.vocab_size - 1));
  if (c.pad_token_id)
    FRUGAL_RETURN_IF_ERROR(r.range("pad_token_id", *c.pad_token_id, 0, c.vocab_size - 1));
  for (int64_t id : c.eos_token_ids)
    FRUGAL_RETURN_IF_ERROR(r.range("eos_token_id", id, 0, c.vocab_size - 1));
  return ok_status();
}

}  // namespace

Status validate_config(const DeepSeekV4Config& c, std::string_view path) {
  const Rules r(path);
  FRUGAL_RETURN_IF_ERROR(check_sizes(c, r));
  FRUGAL_RETURN_IF_ERROR(check_attention(c, r));
  FRUGAL_RETURN_IF_ERROR(check_numbers(c, r));
  return check_moe_and_tokens(c, r);
}

int64_t DeepSeekV4Config::compress_ratio(int64_t block) const {
  FRUGAL_CHECK(block >= 0 && block < static_cast<int64_t>(compress_ratios.size()));
  return compress_ratios[static_cast<size_t>(block)];
}

AttentionKind DeepSeekV4Config::attention_kind(int64_t block) const {
  const int64_t ratio = compress_ratio(block);
  if (ratio == 0) return AttentionKind::kWindow;
  return ratio == 4 ? AttentionKind::kCsa : AttentionKind::kHca;
}

RopeParams DeepSeekV4Config::rope_params(int64_t block) const {
  RopeParams p;
  p.rope_factor = rope_factor;
  p.beta_fast = beta_fast;
  p.beta_slow = beta_slow;
  if (compress_ratio(block) == 0) {
    p.theta =
        rope_theta;  // "disable YaRN and use base rope_theta in pure sliding-window attention"
    p.original_seq_len = 0;
  } else {
    p.theta = compress_rope_theta;
    p.original_seq_len = original_seq_len;
  }
  return p;
}

std::string_view attention_kind_name(AttentionKind kind) {
  switch (kind) {
    case AttentionKind::kWindow:
      return "window";
    case AttentionKind::kCsa:
      return "csa";
    case AttentionKind::kHca:
      return "hca";
  }
  return "?";
}

std::string_view score_func_name(ScoreFunc f) {
  switch (f) {
    case ScoreFunc::kSoftmax:
      return "softmax";
    case ScoreFunc::kSigmoid:
      return "sigmoid";
    case ScoreFunc::kSqrtSoftplus:
      return "sqrtsoftplus";
  }
  return "?";
}

std::string_view expert_dtype_name(ExpertDtype d) { return d == ExpertDtype::kFp8 ? "fp8" : "fp4"; }

std::string config_to_json(const DeepSeekV4Config& c) {
  nlohmann::ordered_json j;
  j["architectures"] = {"DeepseekV4ForCausalLM"};
  j["model_type"] = "deepseek_v4";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.dim;
  j["num_hidden_layers"] = c.n_layers;
  j["num_nextn_predict_layers"] = c.n_mtp_layers;
  j["num_attention_heads"] = c.n_heads;
  j["num_key_value_heads"] = 1;
  j["head_dim"] = c.head_dim;
  j["qk_rope_head_dim"] = c.rope_head_dim;
  j["q_lora_rank"] = c.q_lora_rank;
  j["o_groups"] = c.o_groups;
  j["o_lora_rank"] = c.o_lora_rank;
  j["sliding_window"] = c.window_size;
  j["compress_ratios"] = c.compress_ratios;
  j["compress_rope_theta"] = c.compress_rope_theta;
  j["rope_theta"] = c.rope_theta;
  if (c.original_seq_len > 0 || c.rope_factor != 1.0 || c.beta_fast != 32.0 || c.beta_slow != 1.0)
    j["rope_scaling"] = {{"type", "yarn"},
                         {"factor", c.rope_factor},
                         {"original_max_position_embeddings", c.original_seq_len},
                         {"beta_fast", c.beta_fast},
                         {"beta_slow", c.beta_slow}};
  j["index_n_heads"] = c.index_n_heads;
  j["index_head_dim"] = c.index_head_dim;
  j["index_topk"] = c.index_topk;
  j["hc_mult"] = c.hc_mult;
  j["hc_sinkhorn_iters"] = c.hc_sinkhorn_iters;
  j["hc_eps"] = c.hc_eps;
  j["n_routed_experts"] = c.n_routed_experts;
  j["n_shared_experts"] = c.n_shared_experts;
  j["num_experts_per_tok"] = c.n_activated_experts;
  j["moe_intermediate_size"] = c.moe_inter_dim;
  j["num_hash_layers"] = c.n_hash_layers;
  j["scoring_func"] = score_func_name(c.score_func);
  j["topk_method"] = "noaux_tc";
  j["norm_topk_prob"] = c.norm_topk_prob;
  j["routed_scaling_factor"] = c.route_scale;
  j["swiglu_limit"] = c.swiglu_limit;
  j["expert_dtype"] = expert_dtype_name(c.expert_dtype);
  j["rms_norm_eps"] = c.norm_eps;
  j["max_position_embeddings"] = c.max_position_embeddings;
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  if (c.pad_token_id) j["pad_token_id"] = *c.pad_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  if (c.eos_token_ids.size() > 1) j["eos_token_id"] = c.eos_token_ids;
  j["tie_word_embeddings"] = false;
  nlohmann::ordered_json q = {{"quant_method", "fp8"},
                              {"fmt", "e4m3"},
                              {"activation_scheme", "dynamic"},
                              {"weight_block_size", {128, 128}}};
  if (c.scale_fmt == ScaleFmt::kUe8m0) q["scale_fmt"] = "ue8m0";
  j["quantization_config"] = q;
  return j.dump(2) + "\n";
}

}  // namespace frugal::v4
