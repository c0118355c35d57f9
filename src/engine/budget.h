// The memory budget (--mem-budget): what frugal holds when the routed experts stream from disk.
// User guide: docs/STREAMING.md.
//
// Under a budget the process holds, and nothing else of size:
//   resident weights  every tensor but the routed experts and the embedding (attention,
//                     compressors, indexer, shared experts, router, mHC, norms, head; MTP blocks
//                     only when used), copied once into huge-page memory;
//   activation arena  Model::scratch_bytes();
//   kv cache          kv_bytes_at(ctx) per sequence x sequences;
//   overhead          tokenizer, tables, thread stacks, allocator slack (kBudgetOverhead);
//   expert slots      the rest, in whole slots of expert_slot_bytes(): one routed expert (w1, w2,
//                     w3 and their scales) each, filled by O_DIRECT reads (no page cache).
// The embedding's table stays on disk: a forward pass reads one row per token of it
// (stream/embed_rows.h, a buffer of one row inside the overhead), which leaves its 1,010 MiB (V4
// dims) to expert slots. The minimum budget holds kMinSlotsPerToken x n_activated_experts slots
// (one token's experts of one layer, and as many again for the next layer's reads to start while
// this one computes).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/v4/config.h"
#include "model/v4/shard.h"

namespace frugal::engine {

inline constexpr uint64_t kBudgetOverhead = uint64_t{256} << 20;
inline constexpr int64_t kMinSlotsPerToken = 2;
inline constexpr uint64_t kDirectIoAlign = 4096;

// Bytes of one expert slot: for each of w1, w2, w3 and their scale tensors (the largest expert of
// any block, MTP included), the tensor's bytes rounded up to kDirectIoAlign plus one more
// kDirectIoAlign (an O_DIRECT read of a tensor that starts mid-page covers whole pages). A
// tensor that a checkpoint may also store in its alternative dtype (FP8 experts' f32 scales)
// counts with the larger of the two.
// V4-Flash (FP4 experts, dim 4096, moe_inter_dim 2048): w1, w3 = 4 MiB + 256 KiB scales each,
// w2 the same; (4 MiB + 4 KiB + 256 KiB + 4 KiB) x 3 = 13,393,920 B.
uint64_t expert_slot_bytes(const v4::DeepSeekV4Config& c);

// Bytes of every tensor but the routed experts and the embedding, of the main blocks and, only
// when with_mtp, of the MTP blocks; with a shard (one process of a parallel run,
// docs/PARALLEL.md), of the tensors it holds.
uint64_t resident_weight_bytes(const v4::DeepSeekV4Config& c, bool with_mtp,
                               const v4::Shard* shard = nullptr);

// Routed experts that stream: n_routed_experts x (main blocks, plus the MTP blocks when with_mtp);
// with a shard, the experts it holds in the blocks it holds.
int64_t streamed_expert_count(const v4::DeepSeekV4Config& c, bool with_mtp,
                              const v4::Shard* shard = nullptr);

struct BudgetPlan {
  uint64_t budget = 0;
  uint64_t resident_weight_bytes = 0;
  uint64_t activation_bytes = 0;
  uint64_t kv_bytes = 0;
  uint64_t overhead_bytes = kBudgetOverhead;
  uint64_t slot_bytes = 0;
  int64_t slots = 0;  // expert slots that fit (at most streamed_experts)
  int64_t streamed_experts = 0;
  uint64_t streamed_embed_bytes = 0;  // the embedding's table, left on disk (0: not held)
  uint64_t min_budget = 0;  // resident + arena + kv + overhead + the minimum slots
  int64_t min_slots = 0;    // kMinSlotsPerToken x n_activated_experts (at most streamed)
  // resident_weight_bytes by the groups of frugal mem (memory_plan.h weights_by_kind, without
  // "routed_experts"; "mtp" holds the MTP blocks' non-expert tensors when with_mtp).
  std::map<std::string, uint64_t> resident_by_kind;
  bool with_mtp = false;
  bool all_experts_fit() const { return slots >= streamed_experts; }
  uint64_t slots_bytes() const { return static_cast<uint64_t>(slots) * slot_bytes; }
  // What the plan holds: resident + arena + kv + overhead + slots (<= budget).
  uint64_t used_bytes() const {
    return resident_weight_bytes + activation_bytes + kv_bytes + overhead_bytes + slots_bytes();
  }
};

// The activation arena Model::create allocates for max_chunk tokens per forward and sequences of
// max_seq_len (v4::Scratch::plan, default index tile, one sequence per batch, streamed experts),
// computed from the config alone.
uint64_t activation_bytes_for(const v4::DeepSeekV4Config& c, int64_t max_chunk,
                              int64_t max_seq_len);

// The plan for `budget` bytes. An error when budget < min_budget, naming both: "--mem-budget 3.0
// GiB is below the minimum 4.2 GiB for this model (resident weights 2.9 GiB, ...)".
// With a shard: the plan of that process (its resident tensors and its experts).
Result<BudgetPlan> plan_budget(const v4::DeepSeekV4Config& c, uint64_t budget,
                               uint64_t activation_bytes, uint64_t kv_bytes, bool with_mtp,
                               const v4::Shard* shard = nullptr);

// The memory this process may still use: MemAvailable, lowered to the memory cgroup's limit
// minus its usage where one is set (cgroup v2 memory.max / memory.current, v1
// memory.limit_in_bytes / memory.usage_in_bytes). 0 when unknown.
uint64_t memory_available_for_budget();

// Where memory_available_for_budget() gets its number. The cgroup is found as the kernel names
// it: the process's group in /proc/self/cgroup ("0::/path" for v2, "N:...memory...:/path" for
// v1), under the mount point /proc/self/mountinfo gives for that hierarchy (cgroup2, or cgroup
// with the memory option). Every group from the process's up to the mount's root is looked at
// (a parent's limit binds its children too); the tightest headroom wins. Usage counts without
// the inactive file cache of memory.stat (the kernel reclaims it first, as MemAvailable assumes
// for the machine). Limits of "max" or >= 2^60 (v1's "unlimited") are no limit.
struct MemoryAvailability {
  uint64_t mem_available = 0;  // /proc/meminfo MemAvailable; 0 = unknown
  int cgroup_version = 0;      // of the tightest limit: 1, 2; 0 = no memory limit found
  std::string cgroup_dir;      // the group directory holding that limit
  uint64_t cgroup_limit = 0;
  uint64_t cgroup_usage = 0;  // less its inactive file cache
  // min(mem_available, cgroup_limit - cgroup_usage) over what is known; 0 when nothing is.
  uint64_t available() const;
};
// `root` prefixes every path read ("" = this machine; tests pass a folder laid out like it).
MemoryAvailability probe_memory_availability(const std::string& root = "");

// "8G", "8GiB", "512M", "1.5G", "123456" (bytes); K/M/G/T are powers of 1024. Errors name `flag`.
// Strict: one number (digits, optionally a fraction), then nothing, "B", or K/M/G/T (either
// case) optionally followed by "iB"; no spaces, signs or exponents; positive; fits in 64 bits.
// A fraction of a byte rounds down. "8GB" is refused (GB means 10^9 to many readers).
Result<uint64_t> parse_size(const std::string& text, const std::string& flag);

// Predicted decode tokens per second under a plan: per token, resident bytes and hit experts are
// read from RAM at ram_gbps, missed experts from disk at disk_gbps:
//   t = (decode_bytes_resident + hits x expert_bytes) / ram + misses x expert_bytes / disk,
// with n_activated_experts x main blocks experts per token and `hit_rate` of them hits
// (decode_weight_bytes_per_token, memory_plan.h, is decode_bytes_resident + all experts).
// tok_s = 1 / t (each read waits for the one before); overlapped_tok_s = 1 / max(RAM time,
// disk time), the roofline when expert reads run entirely behind the compute (issue 12).
// GB/s are 1e9 bytes per second; a bandwidth <= 0 gives tok_s = 0.
struct DecodePrediction {
  double ram_bytes_per_token = 0;
  double disk_bytes_per_token = 0;
  double tok_s = 0;
  double overlapped_tok_s = 0;
};
DecodePrediction predict_decode(const v4::DeepSeekV4Config& c, double hit_rate, double ram_gbps,
                                double disk_gbps);

// Hit rate of `slots` slots over `streamed_experts` experts under uniform routing (every expert
// of a block equally likely, the slots spread evenly over the blocks): min(1, slots / streamed).
double uniform_hit_rate(int64_t slots, int64_t streamed_experts);

// ---- expert profiles (frugal profile writes them; --expert-profile reads them) ----
//
// A JSON object with one required key:
//   {"blocks": [[c_0, c_1, ..., c_{E-1}], ...], ...}
// "blocks"[b][e] = how many times block b's router selected routed expert e (each token adds
// n_activated_experts counts to every block it passes). One row per main block in order
// (0 .. n_layers-1), optionally followed by the MTP blocks' rows; every row has n_routed_experts
// non-negative integer counts. Other top-level keys (a writer's metadata: "model", "tokens",
// "text", ...) are ignored. Files over kMaxExpertProfileBytes are refused.
using ExpertProfile = std::vector<std::vector<uint64_t>>;
inline constexpr uint64_t kMaxExpertProfileBytes = uint64_t{64} << 20;

// Reads and parses a profile; errors name the file and the offending element ("blocks[3][17]").
Result<ExpertProfile> load_expert_profile(const std::string& path);
Result<ExpertProfile> parse_expert_profile(std::string_view json, std::string_view path);
// The profile fits the config: n_layers or n_blocks() rows of n_routed_experts counts, and a
// count somewhere (an all-zero profile says nothing).
Status check_expert_profile(const ExpertProfile& profile, const v4::DeepSeekV4Config& c,
                            std::string_view path);
// Hit rate when the `slots` hottest (block, expert) pairs of the profile are pinned in the cache:
// their share of all counts. A static bound: a recency policy on top can only do better on a
// trace that drifts. 0 for an empty or all-zero profile.
double profile_hit_rate(const ExpertProfile& profile, int64_t slots);

}  // namespace frugal::engine
