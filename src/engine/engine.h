// An engine: everything one model needs to run, loaded from a model directory once: the thread
// pool and the kernel table (owned here and passed down, no globals), the weights (model/v4) and
// the tokenizer. Sequences (kv caches) are created per request with new_cache().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "kv/v4_cache.h"
#include "model/v4/model.h"
#include "stream/embed_rows.h"
#include "stream/expert_cache.h"
#include "tokenizer/tokenizer.h"

namespace frugal::engine {

// Whether the routed experts may stream from disk (docs/STREAMING.md).
enum class StreamExperts : uint8_t {
  kAuto,   // when a budget is given, or the model does not fit in the memory available
  kNever,  // never: the weights are placed as weights_in_ram says (--mem-budget off)
};

struct EngineOptions {
  std::string model_dir;
  int threads = 0;  // 0 = one per CPU
  kv::CacheFormat cache = kv::CacheFormat::kFp8;
  int64_t max_seq_len = 4096;  // longest sequence (sizes the activation arena)
  int64_t max_chunk = 64;      // prefill tokens per forward chunk
  int64_t max_batch = 1;       // sequences per Model::forward_batch (sizes the head's rows)
  bool scan_values = true;     // check e8m0 scales and tid2eid at load
  // Copy the linear weights into huge-page memory at load (v4::WeightPlacement::kHugePages):
  // faster decode, RAM for the whole model. Off: they stay in the mapped files.
  bool weights_in_ram = false;
  // The memory budget (docs/STREAMING.md): unset = derived from the memory available, the routed
  // experts streaming only when the model does not fit in it; set = they stream under it.
  std::optional<uint64_t> mem_budget = std::nullopt;
  StreamExperts stream_experts = StreamExperts::kAuto;
  // Memory the front end holds beside the engine (the server's prefix snapshots), reserved in the
  // budget next to the kv cache.
  uint64_t reserve_bytes = 0;
  std::string expert_profile;            // `frugal profile` output: its hottest experts are pinned
  bool prefetch_experts = true;          // prefetch the next block's likely experts
  bool direct_io = true;                 // O_DIRECT expert reads where the file system allows
  bool unclamped_shared_expert = false;  // v4::SharedExpertClamp::kUnclamped
  bool act_quant = false;                // v4::ModelOptions::act_quant (the deployed numerics)
  bool load_tokenizer = true;
  bool progress = true;  // print load progress on stderr when loading takes over a second
  std::optional<kernels::Isa> isa = std::nullopt;  // kernel level; default FRUGAL_ISA, else best
  // A parallel run (docs/PARALLEL.md; the processes mpirun started): the routed experts shared
  // among the processes of a stage, and the blocks split into pipeline stages.
  bool parallel_experts = false;
  int pipeline_stages = 1;
};

// The model options the engine creates its model with (and plans its memory for).
v4::ModelOptions model_options(const EngineOptions& options);

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> load(const EngineOptions& options);

  v4::Model& model() { return *model_; }
  const v4::DeepSeekV4Config& config() const { return model_->config(); }
  // Fails when the engine was loaded without a tokenizer.
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  bool has_tokenizer() const { return tokenizer_ != nullptr; }
  const EngineOptions& options() const { return options_; }
  ThreadPool& pool() { return *pool_; }
  const kernels::Kernels& kernels() const { return *kernels_; }
  double load_seconds() const { return load_seconds_; }
  // The expert cache when the routed experts stream (else nullptr), and the budget line printed.
  stream::ExpertCache* expert_cache() const { return expert_cache_.get(); }
  // The embedding's row reader under a budget (else nullptr).
  const stream::EmbedRows* embed_rows() const { return embed_rows_.get(); }
  const std::string& budget_summary() const { return budget_summary_; }

  Result<std::unique_ptr<kv::V4SequenceCache>> new_cache() const;
  // The other processes of a parallel run (else nullptr) and the line this process printed.
  v4::Exchange* exchange() const { return exchange_.get(); }
  const std::string& parallel_summary() const { return parallel_summary_; }

 private:
  Engine() = default;
  EngineOptions options_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<kernels::Kernels> kernels_;
  std::unique_ptr<v4::Model> model_;
  // After the model: destroyed first (its I/O threads read the model's weights table).
  std::unique_ptr<stream::ExpertCache> expert_cache_;
  std::unique_ptr<stream::EmbedRows> embed_rows_;
  std::unique_ptr<v4::Exchange> exchange_;  // outlives the model's use (set on it)
  std::string parallel_summary_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  double load_seconds_ = 0.0;
  std::string budget_summary_;
};

// "fp8" | "bf16" | "f32" -> format; errors name the flag.
Result<kv::CacheFormat> parse_cache_format(const std::string& name);

// Peak resident set size of this process (VmHWM of /proc/self/status), 0 when unknown.
uint64_t peak_rss_bytes();
// Resident set size now (VmRSS), 0 when unknown.
uint64_t resident_bytes();
// MemAvailable of /proc/meminfo: memory the kernel can hand out without swapping; 0 when unknown.
uint64_t mem_available_bytes();
// "1.23 GiB" style.
std::string format_bytes(uint64_t bytes);

}  // namespace frugal::engine
