// The DeepSeek-V4 tensor table: every tensor of an official checkpoint, with the dtype and shape
// its config implies (architecture doc §4.1 and §3.2; reference `model.py` module tree).
//
// This is the only place where checkpoint tensor names are spelled. The model looks tensors up by
// (TensorKind, block, expert); loading, checking, synthesizing and byte counting all walk the
// same table.
//
// Blocks: 0..n_layers-1 are the main blocks ("layers.{i}."), n_layers..n_layers+n_mtp_layers-1
// the MTP blocks ("mtp.{k}."). Global tensors have block kNoBlock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "model/v4/config.h"

namespace frugal::v4 {

// One id per tensor role. `*Scale` ids are the block scales of the FP8/FP4 weight listed before
// them (reference `Linear.scale`).
enum class TensorKind : uint8_t {
  // global, and per MTP block for kNorm / kHcHead* (reference Transformer, MTPBlock)
  kEmbed,        // embed.weight            bf16 [vocab, dim]
  kHead,         // head.weight             bf16 [vocab, dim]
  kNorm,         // norm.weight             bf16 [dim]
  kHcHeadFn,     // hc_head_fn              f32  [hc, hc*dim]
  kHcHeadBase,   // hc_head_base            f32  [hc]
  kHcHeadScale,  // hc_head_scale           f32  [1]
  // every block (reference Block)
  kAttnNorm,     // attn_norm.weight        bf16 [dim]
  kFfnNorm,      // ffn_norm.weight         bf16 [dim]
  kHcAttnFn,     // hc_attn_fn              f32  [(2+hc)*hc, hc*dim]
  kHcAttnBase,   // hc_attn_base            f32  [(2+hc)*hc]
  kHcAttnScale,  // hc_attn_scale           f32  [3]
  kHcFfnFn,
  kHcFfnBase,
  kHcFfnScale,
  // attention (reference Attention)
  kAttnSink,  // attn.attn_sink             f32  [n_heads]
  kWqA,       // attn.wq_a                  fp8  [q_lora_rank, dim]
  kWqAScale,
  kQNorm,  // attn.q_norm.weight            bf16 [q_lora_rank]
  kWqB,    // attn.wq_b                     fp8  [n_heads*head_dim, q_lora_rank]
  kWqBScale,
  kWkv,  // attn.wkv                        fp8  [head_dim, dim]
  kWkvScale,
  kKvNorm,  // attn.kv_norm.weight          bf16 [head_dim]
  kWoA,     // attn.wo_a                    fp8  [o_groups*o_lora_rank, n_heads*head_dim/o_groups]
  kWoAScale,
  kWoB,  // attn.wo_b                       fp8  [dim, o_groups*o_lora_rank]
  kWoBScale,
  // compressor, ratio > 0 (reference Compressor; c = 2 when ratio == 4, else 1)
  kCompressorWkv,    // attn.compressor.wkv.weight    bf16 [c*head_dim, dim]
  kCompressorWgate,  // attn.compressor.wgate.weight  bf16 [c*head_dim, dim]
  kCompressorApe,    // attn.compressor.ape           f32  [ratio, c*head_dim]
  kCompressorNorm,   // attn.compressor.norm.weight   bf16 [head_dim]
  // lightning indexer, ratio == 4 (reference Indexer)
  kIndexerWqB,  // attn.indexer.wq_b        fp8  [index_n_heads*index_head_dim, q_lora_rank]
  kIndexerWqBScale,
  kIndexerWeightsProj,      // attn.indexer.weights_proj.weight  bf16 [index_n_heads, dim]
  kIndexerCompressorWkv,    // attn.indexer.compressor.wkv.weight   bf16 [2*index_head_dim, dim]
  kIndexerCompressorWgate,  // attn.indexer.compressor.wgate.weight bf16 [2*index_head_dim, dim]
  kIndexerCompressorApe,    // attn.indexer.compressor.ape          f32  [4, 2*index_head_dim]
  kIndexerCompressorNorm,   // attn.indexer.compressor.norm.weight  bf16 [index_head_dim]
  // MoE (reference Gate, Expert, MoE)
  kGateWeight,   // ffn.gate.weight         bf16 [n_routed_experts, dim]
  kGateBias,     // ffn.gate.bias           f32  [n_routed_experts]          (non-hash blocks)
  kGateTid2eid,  // ffn.gate.tid2eid        i64  [vocab, n_activated_experts] (hash blocks)
  kExpertW1,     // ffn.experts.{e}.w1      fp4: i8 [inter, dim/2]; fp8: [inter, dim]
  kExpertW1Scale,
  kExpertW2,  // ffn.experts.{e}.w2         fp4: i8 [dim, inter/2]; fp8: [dim, inter]
  kExpertW2Scale,
  kExpertW3,  // ffn.experts.{e}.w3         like w1
  kExpertW3Scale,
  kSharedW1,  // ffn.shared_experts.w1      fp8  [inter, dim]
  kSharedW1Scale,
  kSharedW2,  // ffn.shared_experts.w2      fp8  [dim, inter]
  kSharedW2Scale,
  kSharedW3,  // ffn.shared_experts.w3      fp8  [inter, dim]
  kSharedW3Scale,
  // MTP blocks only (reference MTPBlock)
  kMtpEProj,  // e_proj                     fp8  [dim, dim]
  kMtpEProjScale,
  kMtpHProj,  // h_proj                     fp8  [dim, dim]
  kMtpHProjScale,
  kMtpEnorm,  // enorm.weight               bf16 [dim]
  kMtpHnorm,  // hnorm.weight               bf16 [dim]
};
inline constexpr int kNumTensorKinds = static_cast<int>(TensorKind::kMtpHnorm) + 1;

inline constexpr int32_t kNoBlock = -1;
inline constexpr int32_t kNoExpert = -1;

// What the value checks look at (check_checkpoint): e8m0 scales and tid2eid are scanned.
enum class ValueCheck : uint8_t {
  kNone,
  kE8m0Scale,  // no byte may be 0xff (NaN)
  kExpertIds,  // every id in [0, n_routed_experts)
};

struct TensorSpec {
  TensorKind kind;
  int32_t block = kNoBlock;
  int32_t expert = kNoExpert;
  std::string name;
  DType dtype = DType::kF32;      // the dtype the official checkpoints use (and `synth` writes)
  DType alt_dtype = DType::kF32;  // also accepted when has_alt
  bool has_alt = false;
  ValueCheck value_check = ValueCheck::kNone;
  std::vector<int64_t> shape;

  bool accepts(DType t) const { return t == dtype || (has_alt && t == alt_dtype); }
  uint64_t numel() const;
  uint64_t bytes() const;  // in `dtype`
};

class TensorTable {
 public:
  // The config must be valid (validate_config); the table is a pure function of it.
  explicit TensorTable(const DeepSeekV4Config& config);
  // Move-only: by_name_ holds views into the names of entries_.
  TensorTable(TensorTable&&) = default;
  TensorTable& operator=(TensorTable&&) = default;
  TensorTable(const TensorTable&) = delete;
  TensorTable& operator=(const TensorTable&) = delete;

  const std::vector<TensorSpec>& entries() const { return entries_; }
  // nullptr when the config has no such tensor (e.g. the indexer of a window block).
  const TensorSpec* find(TensorKind kind, int32_t block = kNoBlock,
                         int32_t expert = kNoExpert) const;
  const TensorSpec* find_name(std::string_view name) const;
  uint64_t total_bytes() const;
  int64_t n_layers() const { return n_layers_; }
  // Upper bound (exclusive) of the expert ids in tid2eid.
  int64_t n_routed_experts() const { return n_routed_experts_; }

 private:
  TensorSpec& add(TensorKind kind, int32_t block, DType dtype, std::vector<int64_t> shape,
                  int32_t expert = kNoExpert);
  void add_global(const DeepSeekV4Config& c);
  void add_block(const DeepSeekV4Config& c, int32_t block);
  void add_attention(const DeepSeekV4Config& c, int32_t block);
  void add_moe(const DeepSeekV4Config& c, int32_t block);
  void add_fp8_linear(TensorKind weight, int32_t block, int32_t expert, int64_t out, int64_t in,
                      bool f32_scale_ok = false);
  void add_fp4_linear(TensorKind weight, int32_t block, int32_t expert, int64_t out, int64_t in);

  int64_t n_layers_ = 0;
  int64_t n_routed_experts_ = 0;

  std::vector<TensorSpec> entries_;
  std::unordered_map<uint64_t, uint32_t> by_key_;
  std::unordered_map<std::string_view, uint32_t> by_name_;  // views into entries_[i].name
};

// The checkpoint name of a tensor (e.g. "layers.3.attn.wq_a.scale"). `n_layers` separates main
// blocks from MTP blocks.
std::string tensor_name(TensorKind kind, int32_t block, int32_t expert, int64_t n_layers);

std::string shape_to_string(const std::vector<int64_t>& shape);  // "[1024, 4096]"

}  // namespace frugal::v4
