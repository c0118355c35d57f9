// The memory plan of a DeepSeek-V4 model (architecture doc §3): weights by dtype and by kind,
// kv cache bytes per token and at a context length for each cache format, the fixed
// per-sequence state, and the same context under a V3.2-style MLA cache and under plain MHA.
//
// Per-token cost of the cache (doc §3.1), main layers only (what grows with the context):
//   CSA block (ratio 4):  entry/4 + index_key/4;  HCA block (ratio r > 4): entry/r;
//   window-only block: 0. V4-Flash fp8: 21 x (584/4 + 68/4) + 20 x 584/128 = 3514.25 B.
// Comparisons, per token and layer, at the same n_layers / n_heads / head_dim:
//   MLA (V3.2 FlashMLA FP8): 656 B latent + 132 B indexer key;
//   MHA (bf16 K and V of every head): 2 x n_heads x head_dim x 2 B.
//
// kv_bytes_at() is what kv::V4SequenceCache actually allocates for `tokens` tokens, bookkeeping
// aside: every block (MTP blocks too: the cache reserves them with the sequence) holds
// min(tokens, window) ring entries, tokens/ratio compressed entries and tokens/4 indexer keys
// (CSA), each part in whole pages of page_entries entries (the block-granularity rule), every
// allocation rounded up to 64 bytes; plus the fixed f32 compressor state.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kv/v4_entry.h"
#include "model/v4/config.h"
#include "model/v4/shard.h"
#include "model/v4/tensor_table.h"

namespace frugal::engine {

struct KvBytes {
  uint64_t window = 0;
  uint64_t compressed = 0;
  uint64_t index_keys = 0;
  uint64_t compressor_state = 0;
  uint64_t total() const { return window + compressed + index_keys + compressor_state; }
};

// Speculative decoding by weight bytes (decode being bound by them): the cost of verifying n =
// 1 .. k + 1 tokens and of one MTP step relative to a decode step.
struct SpecCostModel {
  std::vector<double> verify;  // [n], n = 0 .. k + 1 ([0] unused)
  double mtp = 0;
};

struct MemoryPlan {
  uint64_t weights_bytes = 0;
  std::map<std::string, uint64_t> weights_by_dtype;  // "f8_e4m3", "bf16", ...
  std::map<std::string, uint64_t> weights_by_kind;   // "routed_experts", "attention", ...
  int64_t ctx = 0;
  double kv_bytes_per_token_fp8 = 0;  // main layers, doc §3.1
  double kv_bytes_per_token_bf16 = 0;
  KvBytes kv_fp8;  // allocated at ctx tokens
  KvBytes kv_bf16;
  uint64_t fixed_state_bytes_fp8 = 0;  // full window ring + compressor state (fp8 entries)
  uint64_t fixed_state_bytes_bf16 = 0;
  double mla_bytes_per_token = 0;  // all main layers
  double mha_bytes_per_token = 0;
  uint64_t activation_bytes = 0;  // Model::scratch_bytes(), when known
  uint64_t load_copy_bytes = 0;   // bytes copied or repacked at load (ModelWeights::owned_stats)
  // Linear weights copied into huge pages at load (--weights-in-ram, ModelWeights::placed_stats);
  // the copied pages of the mapping are dropped, so these replace mapped bytes, not add to them.
  uint64_t placed_weight_bytes = 0;
  int64_t n_layers = 0;
  uint64_t decode_bytes_per_token = 0;   // decode_weight_bytes_per_token
  uint64_t prefill_flops_per_token = 0;  // prefill_matmul_flops_per_token
  SpecCostModel spec;                    // spec_cost_by_bytes(k = 2)
};

// The group frugal mem reports a tensor's bytes under (MemoryPlan::weights_by_kind): "mtp" for
// every tensor of an MTP block, else "routed_experts", "shared_experts", "attention", ...
const char* weight_group(const v4::TensorSpec& s, int64_t n_layers);

// Bytes per token of the main layers' growing cache parts.
double kv_bytes_per_token(const v4::DeepSeekV4Config& c, kv::CacheFormat format);
// What the cache allocates at `tokens` tokens (see above).
KvBytes kv_bytes_at(const v4::DeepSeekV4Config& c, kv::CacheFormat format, int64_t tokens,
                    int64_t page_entries = 16);
// The same for the blocks one process of a parallel run holds (Shard::holds_block: its stage's
// main blocks, the MTP blocks only in a one-stage run); whole_model(c) gives kv_bytes_at.
KvBytes kv_bytes_at(const v4::DeepSeekV4Config& c, kv::CacheFormat format, int64_t tokens,
                    const v4::Shard& shard, int64_t page_entries = 16);
// Weights by dtype and kind; the kv numbers at ctx. activation_bytes and load_copy_bytes are
// left 0 (they need a loaded model).
MemoryPlan plan_memory(const v4::DeepSeekV4Config& c, int64_t ctx);

// Bytes of routed-expert weights (with scales) of one expert of block `block`, and the bytes of
// every other tensor a decode step reads (non-expert weights of the main blocks, the head, one
// embedding row): the decode weight traffic per token is
//   other + sum over main blocks of n_activated_experts x expert bytes.
uint64_t decode_weight_bytes_per_token(const v4::DeepSeekV4Config& c);
// The weight bytes one step of the (first) MTP block reads (speculative decoding's draft): its
// non-expert tensors, num_experts_per_tok routed experts, the shared head and one embedding row.
// 0 when the model has no MTP block.
uint64_t mtp_step_weight_bytes(const v4::DeepSeekV4Config& c);
// The weight bytes a forward over n tokens reads, expected under uniform routing: every
// non-expert tensor once and, per main block, the distinct routed experts the n tokens select,
// n_routed_experts x (1 - (1 - n_activated_experts / n_routed_experts)^n) on average (each token
// picks its experts independently). n = 1 gives decode_weight_bytes_per_token. Real routing is
// skewed and adjacent tokens share experts more often, so this is the upper end.
double forward_weight_bytes(const v4::DeepSeekV4Config& c, int64_t n);
// SpecCostModel from forward_weight_bytes and mtp_step_weight_bytes (empty without an MTP
// block), and the speedup (1 + a + .. + a^k) / (verify[k + 1] + k mtp) that a per-draft
// acceptance rate a gives (0 when k is outside the model).
SpecCostModel spec_cost_by_bytes(const v4::DeepSeekV4Config& c, int32_t k);
double projected_spec_speedup(const SpecCostModel& m, double acceptance, int32_t k);

// Flops of the matrix multiplications one prompt token costs in prefill: 2 x the weight elements
// it is multiplied with (every linear weight of the main blocks incl. the hyper-connection and
// gate projections, and num_experts_per_tok routed experts per block). The embedding lookup, the
// head (run for the last position only), attention scores and MTP blocks are not counted.
uint64_t prefill_matmul_flops_per_token(const v4::DeepSeekV4Config& c);

std::string memory_plan_text(const MemoryPlan& p);
std::string memory_plan_json(const MemoryPlan& p);

}  // namespace frugal::engine
