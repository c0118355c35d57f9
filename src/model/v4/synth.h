// Synthetic DeepSeek-V4 checkpoints: every tensor of the table filled with deterministic
// pseudo-random values that are valid for its dtype, written in the official layout (sharded
// safetensors + model.safetensors.index.json + config.json). Used by tests; the seed of
// `frugal synth`.
//
// Streaming: write_synth_checkpoint generates one tensor at a time, in pieces of at most 1 MiB,
// straight into its shard (format/safetensors_writer.h), so its memory does not grow with the
// checkpoint: a 40 GiB V4-Flash-dims checkpoint is written by a process of a few MiB.
//
// Bytes: one mt19937_64 stream seeded with `seed` runs over the tensors in table order (the
// tests' golden logits depend on these bytes, tests/fixtures/v4-random). The skew option changes
// only the routers' tensors (ffn.gate.bias, ffn.gate.tid2eid) and still consumes their draws from
// the stream, so every other tensor is the same with and without it.
//
// File order: a routed expert's six tensors follow each other in one shard, in the order w1,
// w1.scale, w2, w2.scale, w3, w3.scale, and the experts of a block follow each other in expert
// order (they are all 8-bit, so the writer's larger-elements-first order inside a shard keeps the
// table's order for them), so reading one expert is one contiguous read. A block's experts may
// still be split across two shards, at an expert boundary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "model/v4/config.h"
#include "model/v4/tensor_table.h"

namespace frugal::v4 {

// Skewed expert popularity (--skew S; Zipf-like). Each block b has a popularity order of its
// experts, a random permutation drawn from (seed, b) alone (synth_popularity_order); rank_e in
// 1..E is expert e's position in it. With a skew S >= 0:
//
//   bias-routed blocks:  ffn.gate.bias[e] = -S * kSkewBeta * ln(rank_e)
//   hash-routed blocks:  each tid2eid row draws its n_activated_experts distinct ids one after
//                        another, each with P(e) = rank_e^-S / sum over the ids not yet drawn
//                        of rank^-S (Zipf without replacement; S = 0: uniform, the bytes of the
//                        default)
//
// Why kSkewBeta: the router selects the top-k of score + bias with score = sqrt(softplus(x.w));
// with the synth's gate weights (uniform +-1/sqrt(dim)) and a unit-RMS input the per-token score
// spread has std ~0.17, and a bias of -S * 0.09 * ln(rank) then gives selection frequencies
// ~ rank^-S (simulated for E = 256, top-6: log-log slope -0.52 / -1.01 / -1.56 for S = 0.5 / 1 /
// 1.5; the 64 most popular experts take 50 % / 77 % / 93 % of the selections).
//
// Without a skew (the default), the biases are uniform in +-0.5 like every other 1-D f32 tensor:
// the bytes of earlier synths. That spread outweighs the score spread, so routing there is not
// uniform but concentrated on the experts with the largest random biases (simulated: ~100 of 256
// experts never chosen, the top 64 take ~92 %); `skew = 0` is the uniform case (zero biases).
inline constexpr double kSkewBeta = 0.09;
inline constexpr double kMaxSkew = 16.0;

// Experts of `block` from most to least popular under a skew (rank_e = position + 1).
std::vector<int32_t> synth_popularity_order(uint64_t seed, int32_t block, int64_t n_experts);

struct SynthTensor {
  const TensorSpec* spec = nullptr;  // entry of the table it was made from
  std::vector<std::byte> data;       // spec->bytes() bytes, little-endian
};

// Values (by dtype): e4m3 codes without the NaN codes 0x7f/0xff; packed e2m1 nibbles of any
// value; e8m0 scales 2^-10..2^-4 (so dequantized weights stay O(0.1..1)); bf16/f32 weights
// uniform in +-1/sqrt(fan_in), RMSNorm weights near 1, hc scales near 0.5; tid2eid rows of
// distinct expert ids; router biases and tid2eid as above when `skew` is given. Same seed, same
// bytes. The whole table in memory: for tests; checkpoints are written by write_synth_checkpoint.
std::vector<SynthTensor> synth_tensors(const TensorTable& table, uint64_t seed,
                                       std::optional<double> skew = std::nullopt);

struct SynthOptions {
  uint64_t seed = 1;
  uint64_t max_shard_bytes = 64ull << 20;     // tensor bytes per shard (an expert is never split)
  std::optional<double> skew = std::nullopt;  // in [0, kMaxSkew]; see kSkewBeta
  std::function<void(uint64_t bytes)> on_written = nullptr;  // progress: each piece as written
};

// Writes `dir/config.json` and the sharded tensors of `config`, whole: the checkpoint is built
// beside `dir` and put in its place in one step (core/file_write.h StagedDirectory), so two
// writers of one `dir` both succeed and leave one complete checkpoint. An existing `dir` is
// replaced only when it holds nothing but checkpoint files (is_checkpoint_file); otherwise the
// error names the first other entry and `dir` is left as it was.
Status write_synth_checkpoint(const DeepSeekV4Config& config, const std::string& dir,
                              const SynthOptions& options = {});

// The names a checkpoint writer owns: config.json, model.safetensors.index.json,
// model*.safetensors.
bool is_checkpoint_file(std::string_view name);

}  // namespace frugal::v4
