// DeepSeek-V4 weights bound to typed views: every tensor of the tensor table, looked up by its
// typed id (never by name), checked (dtype, shape, e8m0 NaN scales, tid2eid range) and turned
// into the view the forward pass uses. Linear weights stay in the mapped checkpoint in their
// stored format (FP8/FP4/bf16/f32, dequantized exactly by the kernels, doc §2.B); small vectors
// (norm weights, biases, ape, hc params) are copied to owned f32 when they are bf16 or misaligned.
// One exception: wo_a is read one group of o_lora_rank rows at a time, and an FP8 row slice must
// start on a 128-row scale block; when o_lora_rank is not a multiple of 128 (small test models
// only) wo_a is dequantized to f32 at load (exact, logged).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/memory.h"
#include "core/progress.h"
#include "core/status.h"
#include "format/safetensors.h"
#include "model/v4/config.h"
#include "model/v4/shard.h"
#include "quant/weight_view.h"

namespace frugal::v4 {

using quant::WeightView;

// Whether the shared expert's SwiGLU is clamped (doc §2.7): the current upstream model.py and
// llama.cpp clamp it (default); the first published V4-Flash model.py did not.
enum class SharedExpertClamp : uint8_t { kClamped, kUnclamped };

// Where the linear weights live while the model runs.
enum class WeightPlacement : uint8_t {
  // In the mapped checkpoint files (page cache, 4 KiB pages): nothing is copied, and a model
  // larger than RAM still loads.
  kMapped,
  // Copied once at load into anonymous memory advised as 2 MiB huge pages (chunks of 256 MiB):
  // fewer TLB misses, so decode reads the weights faster (docs/BENCHMARKS.md), at the price of
  // RAM for every weight byte (counted in ModelWeights::placed_stats and logged).
  kHugePages,
};

struct LoadOptions {
  SharedExpertClamp shared_expert_clamp = SharedExpertClamp::kClamped;
  WeightPlacement placement = WeightPlacement::kMapped;
  // Scan e8m0 scale bytes and tid2eid ids (check_checkpoint); reads ~5% of a real checkpoint.
  bool scan_values = true;
  // The routed experts are read from the files on demand (the memory budget: an ExpertSource
  // handed to the Model): their tensors are checked by dtype and shape and located
  // (MoeWeights::locations), but neither mapped into views nor scanned: their codes are checked
  // when an expert is first read. Everything else is placed as `placement` says.
  bool stream_experts = false;
  // The embedding stays on disk (the memory budget: a forward pass reads one row per token): its
  // tensor is checked by dtype and shape and located (ModelWeights::embed_ref), neither mapped
  // into a view nor copied; the rows are read through an EmbedSource handed to the Model.
  bool stream_embed = false;
  // One process of a parallel run (docs/PARALLEL.md) binds, scans and places only the tensors
  // its shard holds (holds_tensor); the others are checked by dtype and shape and left unbound
  // (empty views), their bytes never read. Null: the whole model.
  const Shard* shard = nullptr;
  // Told the bytes of every tensor copied into huge pages (a progress line; may be null).
  ByteProgress* progress = nullptr;
};

// mirrors Block.hc_{attn,ffn}_{fn,base,scale} and the hc_head_* of Transformer / MTPBlock.
struct HcWeights {
  const float* fn = nullptr;     // [rows, hc*dim]: rows = (2+hc)*hc for blocks, hc for heads
  const float* base = nullptr;   // [rows]
  const float* scale = nullptr;  // [3] for blocks, [1] for heads
};

// mirrors Compressor (main: width head_dim, rotate false; indexer: width index_head_dim, rotate).
struct CompressorWeights {
  int64_t ratio = 0;            // 0 = none
  int64_t width = 0;            // d: output width of one entry
  bool overlap = false;         // ratio == 4: two halves, c = 2
  bool rotate = false;          // Hadamard + FP4 (indexer) instead of FP8 (main)
  WeightView wkv;               // [c*d, dim] bf16
  WeightView wgate;             // [c*d, dim] bf16
  const float* ape = nullptr;   // [ratio, c*d]
  const float* norm = nullptr;  // [d]
};

// mirrors Indexer (CSA blocks only).
struct IndexerWeights {
  WeightView wq_b;          // [index_n_heads*index_head_dim, q_lora_rank] fp8
  WeightView weights_proj;  // [index_n_heads, dim] bf16
  CompressorWeights compressor;
};

// mirrors Attention.
struct AttentionWeights {
  const float* attn_sink = nullptr;     // [n_heads]
  WeightView wq_a;                      // [q_lora_rank, dim]
  const float* q_norm = nullptr;        // [q_lora_rank]
  WeightView wq_b;                      // [n_heads*head_dim, q_lora_rank]
  WeightView wkv;                       // [head_dim, dim]
  const float* kv_norm = nullptr;       // [head_dim]
  WeightView wo_a;                      // [o_groups*o_lora_rank, n_heads*head_dim/o_groups]
  std::vector<WeightView> wo_a_groups;  // [o_groups] x [o_lora_rank, n_heads*head_dim/o_groups]
  WeightView wo_b;                      // [dim, o_groups*o_lora_rank]
  CompressorWeights compressor;         // ratio 0 = window-only block
  IndexerWeights indexer;               // ratio 4 only
};

struct ExpertWeights {
  WeightView w1, w2, w3;  // [inter, dim], [dim, inter], [inter, dim]
};

// Where one linear weight read on demand (a streamed expert's, the streamed embedding) lies in
// the checkpoint (file, offset, size in the TensorInfos) and the view it makes once its bytes
// are in memory.
struct TensorRef {
  const format::TensorInfo* weight = nullptr;
  const format::TensorInfo* scale = nullptr;  // FP8 / MXFP4 block scales; nullptr otherwise
  quant::WeightFormat format = quant::WeightFormat::kF32;
  int64_t rows = 0, cols = 0;
};
struct ExpertLocation {
  TensorRef w1, w2, w3;
};

// mirrors Gate + MoE.
struct MoeWeights {
  WeightView gate;                        // [n_routed_experts, dim] bf16
  const float* bias = nullptr;            // [n_routed_experts], non-hash blocks
  const int32_t* tid2eid = nullptr;       // [vocab, n_activated_experts], hash blocks (checked ids)
  std::vector<ExpertWeights> experts;     // [n_routed_experts]; empty views when streamed
  std::vector<ExpertLocation> locations;  // [n_routed_experts] when streamed, else empty
  ExpertWeights shared;
  float shared_swiglu_limit = 0.0f;  // 0 = unclamped
};

// mirrors MTPBlock's own parameters (MTP blocks only).
struct MtpWeights {
  WeightView e_proj, h_proj;  // [dim, dim]
  const float* enorm = nullptr;
  const float* hnorm = nullptr;
  const float* norm = nullptr;
  HcWeights hc_head;
};

struct BlockWeights {
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  HcWeights hc_attn, hc_ffn;
  AttentionWeights attn;
  MoeWeights ffn;
  MtpWeights mtp;
};

struct ModelWeights {
  DeepSeekV4Config config;
  WeightView embed;  // [vocab, dim] bf16 (rows read by dequant_row); empty when streamed_embed
  TensorRef embed_ref;  // where embed lies in `checkpoint` and its format (when held)
  WeightView head;   // [vocab, dim]
  const float* norm = nullptr;
  HcWeights hc_head;
  std::vector<BlockWeights> blocks;  // n_layers main blocks, then the MTP blocks
  bool streamed_experts = false;     // LoadOptions::stream_experts: routed experts not bound
  bool streamed_embed = false;       // LoadOptions::stream_embed: embed not bound (embed_ref)
  Shard shard;                       // what is bound (LoadOptions::shard; else the whole model)

  format::Checkpoint checkpoint;  // owns the mapped files the views point into
  MemoryStats owned_stats;        // bytes copied at load (bf16 -> f32 vectors, tid2eid, ...)
  MemoryStats placed_stats;  // huge-page copies of the linear weights (WeightPlacement::kHugePages)
  uint64_t placed_bytes = 0;  // of which tensor bytes copied (each rounded up to 64 bytes)
  std::vector<AlignedBuffer> owned;
};

// Checks that the forward pass supports `config` (beyond what validate_config checks).
Status check_model_supported(const DeepSeekV4Config& config);

// Loads config.json and the checkpoint in `dir`, checks every tensor against the tensor table and
// binds it. Any problem is an error naming the file, tensor and what was expected.
Result<std::unique_ptr<ModelWeights>> load_weights(const std::string& dir,
                                                   const LoadOptions& options = {});

}  // namespace frugal::v4
