// Synthetic DeepSeek-V4 checkpoints: every tensor of the table filled with deterministic
// pseudo-random values that are valid for its dtype, written in the official layout (sharded
// safetensors + config.json). Used by tests; the seed of `frugal synth`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "model/v4/config.h"
#include "model/v4/tensor_table.h"

namespace frugal::v4 {

struct SynthTensor {
  const TensorSpec* spec = nullptr;  // entry of the table it was made from
  std::vector<std::byte> data;       // spec->bytes() bytes, little-endian
};

// Values (by dtype): e4m3 codes without the NaN codes 0x7f/0xff; packed e2m1 nibbles of any
// value; e8m0 scales 2^-10..2^-4 (so dequantized weights stay O(0.1..1)); bf16/f32 weights
// uniform in +-1/sqrt(fan_in), RMSNorm weights near 1, hc scales near 0.5; tid2eid rows of
// distinct expert ids. Same seed, same bytes.
std::vector<SynthTensor> synth_tensors(const TensorTable& table, uint64_t seed);

struct SynthOptions {
  uint64_t seed = 1;
  uint64_t max_shard_bytes = 64ull << 20;  // write_sharded splits at this many tensor bytes
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
