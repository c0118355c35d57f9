// The memory budget (--mem-budget): what frugal holds when the routed experts stream from disk.
//
// Under a budget the process holds, and nothing else of size:
//   resident weights  every tensor but the routed experts (attention, compressors, indexer, shared
//                     experts, router, mHC, norms, embedding, head; MTP blocks only when used),
//                     copied once into huge-page memory;
//   activation arena  Model::scratch_bytes();
//   kv cache          kv_bytes_at(ctx) per sequence x sequences;
//   overhead          tokenizer, tables, thread stacks, allocator slack (kBudgetOverhead);
//   expert slots      the rest, in whole slots of expert_slot_bytes(): one routed expert (w1, w2,
//                     w3 and their scales) each, filled by O_DIRECT reads (no page cache).
// The minimum budget holds kMinSlotsPerToken x n_activated_experts slots (one token's experts of
// one layer, and as many again for the next layer's reads to start while this one computes).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "model/v4/config.h"

namespace frugal::engine {

inline constexpr uint64_t kBudgetOverhead = uint64_t{256} << 20;
inline constexpr int64_t kMinSlotsPerToken = 2;
inline constexpr uint64_t kDirectIoAlign = 4096;

// Bytes of one expert slot: for each of w1, w2, w3 and their scale tensors (the largest expert of
// any block, MTP included), the tensor's bytes rounded up to kDirectIoAlign plus one more
// kDirectIoAlign (an O_DIRECT read of a tensor that starts mid-page covers whole pages).
uint64_t expert_slot_bytes(const v4::DeepSeekV4Config& c);

// Bytes of every tensor but the routed experts, of the main blocks and, only when with_mtp, of
// the MTP blocks.
uint64_t resident_weight_bytes(const v4::DeepSeekV4Config& c, bool with_mtp);

// Routed experts that stream: n_routed_experts x (main blocks, plus the MTP blocks when with_mtp).
int64_t streamed_expert_count(const v4::DeepSeekV4Config& c, bool with_mtp);

struct BudgetPlan {
  uint64_t budget = 0;
  uint64_t resident_weight_bytes = 0;
  uint64_t activation_bytes = 0;
  uint64_t kv_bytes = 0;
  uint64_t overhead_bytes = kBudgetOverhead;
  uint64_t slot_bytes = 0;
  int64_t slots = 0;           // expert slots that fit (at most streamed_experts)
  int64_t streamed_experts = 0;
  uint64_t min_budget = 0;     // resident + arena + kv + overhead + the minimum slots
  bool all_experts_fit() const { return slots >= streamed_experts; }
};

// The plan for `budget` bytes. An error when budget < min_budget, naming both: "--mem-budget 3.0
// GiB is below the minimum 4.2 GiB for this model (resident weights 2.9 GiB, ...)".
Result<BudgetPlan> plan_budget(const v4::DeepSeekV4Config& c, uint64_t budget,
                               uint64_t activation_bytes, uint64_t kv_bytes, bool with_mtp);

// The memory this process may still use: MemAvailable, lowered to the memory cgroup's limit
// minus its usage where one is set (cgroup v2 memory.max / memory.current, v1
// memory.limit_in_bytes / memory.usage_in_bytes). 0 when unknown.
uint64_t memory_available_for_budget();

// "8G", "8GiB", "512M", "1.5G", "123456" (bytes); K/M/G/T are powers of 1024. Errors name `flag`.
Result<uint64_t> parse_size(const std::string& text, const std::string& flag);

// Predicted decode tokens per second under a plan: per token, resident bytes and hit experts are
// read from RAM at ram_gbps, missed experts from disk at disk_gbps:
//   t = (decode_bytes_resident + hits x slot) / ram + misses x expert_bytes / disk,
// with n_activated_experts x main blocks experts per token and `hit_rate` of them hits.
struct DecodePrediction {
  double ram_bytes_per_token = 0;
  double disk_bytes_per_token = 0;
  double tok_s = 0;
};
DecodePrediction predict_decode(const v4::DeepSeekV4Config& c, double hit_rate, double ram_gbps,
                                double disk_gbps);

}  // namespace frugal::engine
