// Builds the V4 tensor table from a config. Names, dtypes and shapes follow the official
// checkpoints (architecture doc §4.1, §3.2; checked against the V4-Flash and V4-Pro tensor
// inventories) and the module tree of the reference `model.py`.
#include "model/v4/tensor_table.h"

#include <array>

namespace frugal::v4 {
namespace {

// FP8 weights carry one scale per 128x128 block (reference `block_size`), FP4 weights one per
// 1x32 along the input dimension (reference `fp4_block_size`).
constexpr int64_t kFp8Block = 128;
constexpr int64_t kFp4Block = 32;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Name of each kind inside its block (or at top level). "{e}" marks the expert index.
constexpr std::array<std::string_view, kNumTensorKinds> kSuffix = {
    "embed.weight",
    "head.weight",
    "norm.weight",
    "hc_head_fn",
    "hc_head_base",
    "hc_head_scale",
    "attn_norm.weight",
    "ffn_norm.weight",
    "hc_attn_fn",
    "hc_attn_base",
    "hc_attn_scale",
    "hc_ffn_fn",
    "hc_ffn_base",
    "hc_ffn_scale",
    "attn.attn_sink",
    "attn.wq_a.weight",
    "attn.wq_a.scale",
    "attn.q_norm.weight",
    "attn.wq_b.weight",
    "attn.wq_b.scale",
    "attn.wkv.weight",
    "attn.wkv.scale",
    "attn.kv_norm.weight",
    "attn.wo_a.weight",
    "attn.wo_a.scale",
    "attn.wo_b.weight",
    "attn.wo_b.scale",
    "attn.compressor.wkv.weight",
    "attn.compressor.wgate.weight",
    "attn.compressor.ape",
    "attn.compressor.norm.weight",
    "attn.indexer.wq_b.weight",
    "attn.indexer.wq_b.scale",
    "attn.indexer.weights_proj.weight",
    "attn.indexer.compressor.wkv.weight",
    "attn.indexer.compressor.wgate.weight",
    "attn.indexer.compressor.ape",
    "attn.indexer.compressor.norm.weight",
    "ffn.gate.weight",
    "ffn.gate.bias",
    "ffn.gate.tid2eid",
    "ffn.experts.{e}.w1.weight",
    "ffn.experts.{e}.w1.scale",
    "ffn.experts.{e}.w2.weight",
    "ffn.experts.{e}.w2.scale",
    "ffn.experts.{e}.w3.weight",
    "ffn.experts.{e}.w3.scale",
    "ffn.shared_experts.w1.weight",
    "ffn.shared_experts.w1.scale",
    "ffn.shared_experts.w2.weight",
    "ffn.shared_experts.w2.scale",
    "ffn.shared_experts.w3.weight",
    "ffn.shared_experts.w3.scale",
    "e_proj.weight",
    "e_proj.scale",
    "h_proj.weight",
    "h_proj.scale",
    "enorm.weight",
    "hnorm.weight",
};
static_assert(kSuffix.size() == kNumTensorKinds);

TensorKind scale_of(TensorKind weight) {
  return static_cast<TensorKind>(static_cast<int>(weight) + 1);
}

uint64_t lookup_key(TensorKind kind, int32_t block, int32_t expert) {
  return (static_cast<uint64_t>(kind) << 48) | (static_cast<uint64_t>(block + 1) << 24) |
         static_cast<uint64_t>(expert + 1);
}

}  // namespace

std::string tensor_name(TensorKind kind, int32_t block, int32_t expert, int64_t n_layers) {
  std::string name;
  if (block >= 0 && block < n_layers) {
    name = "layers." + std::to_string(block) + ".";
  } else if (block >= n_layers) {
    name = "mtp." + std::to_string(block - n_layers) + ".";
  }
  std::string_view suffix = kSuffix[static_cast<size_t>(kind)];
  const size_t at = suffix.find("{e}");
  if (at == std::string_view::npos) {
    name += suffix;
  } else {
    name += suffix.substr(0, at);
    name += std::to_string(expert);
    name += suffix.substr(at + 3);
  }
  return name;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

uint64_t TensorSpec::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

uint64_t TensorSpec::bytes() const { return dtype_bytes(dtype, numel()); }

TensorSpec& TensorTable::add(TensorKind kind, int32_t block, DType dtype,
                             std::vector<int64_t> shape, int32_t expert) {
  TensorSpec spec;
  spec.kind = kind;
  spec.block = block;
  spec.expert = expert;
  spec.name = tensor_name(kind, block, expert, n_layers_);
  spec.dtype = dtype;
  spec.shape = std::move(shape);
  by_key_.emplace(lookup_key(kind, block, expert), static_cast<uint32_t>(entries_.size()));
  entries_.push_back(std::move(spec));
  return entries_.back();
}

void TensorTable::add_fp8_linear(TensorKind weight, int32_t block, int32_t expert, int64_t out,
                                 int64_t in, bool f32_scale_ok) {
  add(weight, block, DType::kF8E4M3, {out, in}, expert);
  TensorSpec& scale = add(scale_of(weight), block, DType::kF8E8M0,
                          {ceil_div(out, kFp8Block), ceil_div(in, kFp8Block)}, expert);
  scale.value_check = ValueCheck::kE8m0Scale;
  if (f32_scale_ok) scale.alt_dtype = DType::kF32, scale.has_alt = true;
}

// Packed e2m1, two per byte (low nibble = even element), declared I8 [out, in/2] in the file.
void TensorTable::add_fp4_linear(TensorKind weight, int32_t block, int32_t expert, int64_t out,
                                 int64_t in) {
  add(weight, block, DType::kI8, {out, in / 2}, expert);
  add(scale_of(weight), block, DType::kF8E8M0, {out, in / kFp4Block}, expert).value_check =
      ValueCheck::kE8m0Scale;
}

void TensorTable::add_global(const DeepSeekV4Config& c) {
  const int32_t g = kNoBlock;
  add(TensorKind::kEmbed, g, DType::kBF16, {c.vocab_size, c.dim});
  add(TensorKind::kHead, g, DType::kBF16, {c.vocab_size, c.dim});
  add(TensorKind::kNorm, g, DType::kBF16, {c.dim});
  add(TensorKind::kHcHeadFn, g, DType::kF32, {c.hc_mult, c.hc_dim()});
  add(TensorKind::kHcHeadBase, g, DType::kF32, {c.hc_mult});
  add(TensorKind::kHcHeadScale, g, DType::kF32, {1});
}

// mirrors Attention.__init__ (+ Compressor, Indexer)
void TensorTable::add_attention(const DeepSeekV4Config& c, int32_t b) {
  const int64_t group_in = c.n_heads * c.head_dim / c.o_groups;  // heads of one group, flattened
  add(TensorKind::kAttnSink, b, DType::kF32, {c.n_heads});
  add_fp8_linear(TensorKind::kWqA, b, kNoExpert, c.q_lora_rank, c.dim);
  add(TensorKind::kQNorm, b, DType::kBF16, {c.q_lora_rank});
  add_fp8_linear(TensorKind::kWqB, b, kNoExpert, c.n_heads * c.head_dim, c.q_lora_rank);
  add_fp8_linear(TensorKind::kWkv, b, kNoExpert, c.head_dim, c.dim);
  add(TensorKind::kKvNorm, b, DType::kBF16, {c.head_dim});
  // wo_a ships as FP8 (the reference declares it bf16 and convert.py dequantizes it).
  add_fp8_linear(TensorKind::kWoA, b, kNoExpert, c.o_groups * c.o_lora_rank, group_in);
  add_fp8_linear(TensorKind::kWoB, b, kNoExpert, c.dim, c.o_groups * c.o_lora_rank);

  const int64_t ratio = c.compress_ratio(b);
  if (ratio == 0) return;
  const int64_t coff = ratio == 4 ? 2 : 1;  // overlapping compressor doubles its projections
  add(TensorKind::kCompressorWkv, b, DType::kBF16, {coff * c.head_dim, c.dim});
  add(TensorKind::kCompressorWgate, b, DType::kBF16, {coff * c.head_dim, c.dim});
  add(TensorKind::kCompressorApe, b, DType::kF32, {ratio, coff * c.head_dim});
  add(TensorKind::kCompressorNorm, b, DType::kBF16, {c.head_dim});
  if (ratio != 4) return;
  // The indexer's own compressor always overlaps (ratio 4, c = 2) at width index_head_dim.
  add_fp8_linear(TensorKind::kIndexerWqB, b, kNoExpert, c.index_n_heads * c.index_head_dim,
                 c.q_lora_rank);
  add(TensorKind::kIndexerWeightsProj, b, DType::kBF16, {c.index_n_heads, c.dim});
  add(TensorKind::kIndexerCompressorWkv, b, DType::kBF16, {2 * c.index_head_dim, c.dim});
  add(TensorKind::kIndexerCompressorWgate, b, DType::kBF16, {2 * c.index_head_dim, c.dim});
  add(TensorKind::kIndexerCompressorApe, b, DType::kF32, {4, 2 * c.index_head_dim});
  add(TensorKind::kIndexerCompressorNorm, b, DType::kBF16, {c.index_head_dim});
}

// mirrors MoE.__init__ (+ Gate, Expert)
void TensorTable::add_moe(const DeepSeekV4Config& c, int32_t b) {
  add(TensorKind::kGateWeight, b, DType::kBF16, {c.n_routed_experts, c.dim});
  if (c.is_hash_layer(b)) {
    // int32 in model.py; the checkpoints store I64.
    TensorSpec& ids =
        add(TensorKind::kGateTid2eid, b, DType::kI64, {c.vocab_size, c.n_activated_experts});
    ids.alt_dtype = DType::kI32;
    ids.has_alt = true;
    ids.value_check = ValueCheck::kExpertIds;
  } else {
    add(TensorKind::kGateBias, b, DType::kF32, {c.n_routed_experts});
  }
  const int64_t d = c.dim;
  const int64_t inter = c.moe_inter_dim;
  for (int32_t e = 0; e < static_cast<int32_t>(c.n_routed_experts); ++e) {
    if (c.expert_dtype == ExpertDtype::kFp4) {
      add_fp4_linear(TensorKind::kExpertW1, b, e, inter, d);
      add_fp4_linear(TensorKind::kExpertW2, b, e, d, inter);
      add_fp4_linear(TensorKind::kExpertW3, b, e, inter, d);
    } else {
      // Base checkpoints: FP8 experts; their scales are documented as fp32 (doc §1.2), e8m0 is
      // accepted as well.
      add_fp8_linear(TensorKind::kExpertW1, b, e, inter, d, /*f32_scale_ok=*/true);
      add_fp8_linear(TensorKind::kExpertW2, b, e, d, inter, /*f32_scale_ok=*/true);
      add_fp8_linear(TensorKind::kExpertW3, b, e, inter, d, /*f32_scale_ok=*/true);
    }
  }
  add_fp8_linear(TensorKind::kSharedW1, b, kNoExpert, inter, d);
  add_fp8_linear(TensorKind::kSharedW2, b, kNoExpert, d, inter);
  add_fp8_linear(TensorKind::kSharedW3, b, kNoExpert, inter, d);
}

// mirrors Block.__init__, and MTPBlock.__init__ for blocks >= n_layers
void TensorTable::add_block(const DeepSeekV4Config& c, int32_t b) {
  if (c.is_mtp_block(b)) {
    add_fp8_linear(TensorKind::kMtpEProj, b, kNoExpert, c.dim, c.dim);
    add_fp8_linear(TensorKind::kMtpHProj, b, kNoExpert, c.dim, c.dim);
    add(TensorKind::kMtpEnorm, b, DType::kBF16, {c.dim});
    add(TensorKind::kMtpHnorm, b, DType::kBF16, {c.dim});
    add(TensorKind::kNorm, b, DType::kBF16, {c.dim});
    add(TensorKind::kHcHeadFn, b, DType::kF32, {c.hc_mult, c.hc_dim()});
    add(TensorKind::kHcHeadBase, b, DType::kF32, {c.hc_mult});
    add(TensorKind::kHcHeadScale, b, DType::kF32, {1});
  }
  add(TensorKind::kAttnNorm, b, DType::kBF16, {c.dim});
  add(TensorKind::kFfnNorm, b, DType::kBF16, {c.dim});
  const TensorKind hc[2][3] = {
      {TensorKind::kHcAttnFn, TensorKind::kHcAttnBase, TensorKind::kHcAttnScale},
      {TensorKind::kHcFfnFn, TensorKind::kHcFfnBase, TensorKind::kHcFfnScale}};
  for (const auto& k : hc) {
    add(k[0], b, DType::kF32, {c.hc_mix(), c.hc_dim()});
    add(k[1], b, DType::kF32, {c.hc_mix()});
    add(k[2], b, DType::kF32, {3});
  }
  add_attention(c, b);
  add_moe(c, b);
}

TensorTable::TensorTable(const DeepSeekV4Config& c)
    : n_layers_(c.n_layers), n_routed_experts_(c.n_routed_experts) {
  add_global(c);
  for (int32_t b = 0; b < static_cast<int32_t>(c.n_blocks()); ++b) add_block(c, b);
  // Names are final now; index them (views stay valid: entries_ no longer reallocates, and a
  // move of the vector keeps its elements in place).
  by_name_.reserve(entries_.size());
  for (uint32_t i = 0; i < entries_.size(); ++i) by_name_.emplace(entries_[i].name, i);
}

const TensorSpec* TensorTable::find(TensorKind kind, int32_t block, int32_t expert) const {
  auto it = by_key_.find(lookup_key(kind, block, expert));
  return it == by_key_.end() ? nullptr : &entries_[it->second];
}

const TensorSpec* TensorTable::find_name(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

uint64_t TensorTable::total_bytes() const {
  uint64_t total = 0;
  for (const TensorSpec& s : entries_) total += s.bytes();
  return total;
}

}  // namespace frugal::v4
