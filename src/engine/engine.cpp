#include "engine/engine.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/progress.h"
#include "engine/memory_plan.h"
#include "engine/parallel_run.h"
#include "engine/streaming.h"
#include "kernels/isa.h"
#include "parallel/world.h"

namespace frugal::engine {
namespace {

// Prints "loading DIR ..." once loading has taken a second, then the time when it ends: a fast
// load (the tiny model) stays silent.
class LoadProgress {
 public:
  LoadProgress(bool enabled, std::string what) : what_(std::move(what)) {
    if (!enabled) return;
    thread_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return done_; })) {
        std::fprintf(stderr, "loading %s ...\n", what_.c_str());
        printed_ = true;
      }
    });
  }
  void finish(double seconds) {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
    if (printed_) std::fprintf(stderr, "loaded %s in %.1f s\n", what_.c_str(), seconds);
  }
  ~LoadProgress() { finish(0.0); }

 private:
  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool printed_ = false;
  std::thread thread_;
};

}  // namespace

Result<kv::CacheFormat> parse_cache_format(const std::string& name) {
  if (name == "fp8") return kv::CacheFormat::kFp8;
  if (name == "bf16") return kv::CacheFormat::kBf16;
  if (name == "f32") return kv::CacheFormat::kF32;
  return invalid_argument("--cache: unknown format '" + name + "' (fp8, bf16 or f32)");
}

v4::ModelOptions model_options(const EngineOptions& options) {
  return {.max_chunk = options.max_chunk,
          .max_seq_len = options.max_seq_len,
          .max_batch = options.max_batch,
          .act_quant = options.act_quant,
          .threads = options.threads};
}

Result<std::unique_ptr<Engine>> Engine::load(const EngineOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Engine> e(new Engine());
  e->options_ = options;
  FRUGAL_ASSIGN_OR_RETURN(const v4::DeepSeekV4Config config, v4::load_config(options.model_dir));
  // A parallel run: this process's shard, and its budget when its experts stream.
  FRUGAL_ASSIGN_OR_RETURN(const std::optional<v4::Shard> shard, plan_parallel(options, config));
  const v4::Shard* my_shard = shard.has_value() ? &*shard : nullptr;
  // In a parallel run a step that fails on one process fails on all of them, named by rank:
  // the others would otherwise wait for it in their next collective.
  auto agreed = [&](const Status& st, const std::string& what) {
    return my_shard != nullptr ? parallel::agree(st, what) : st;
  };
  Result<StreamDecision> decided = decide_streaming(options, config, my_shard);
  FRUGAL_RETURN_IF_ERROR(agreed(decided.status(), "cannot run under its budget"));
  FRUGAL_ASSIGN_OR_RETURN(const StreamDecision stream, std::move(decided));
  const bool copying = options.weights_in_ram || stream.stream;
  // On a terminal, a copy into huge pages shows bytes, rate and time left; otherwise one line
  // once the load has taken a second. Quiet when piped.
  const bool draw_bytes = copying && options.progress && stderr_is_terminal();
  LoadProgress progress(options.progress && !draw_bytes, options.model_dir);
  ByteProgress bytes({.what = "loading " + options.model_dir,
                      .total = stream.stream ? resident_weight_bytes(config, true, my_shard)
                                             : plan_memory(config, 1).weights_bytes,
                      .enabled = draw_bytes});
  FRUGAL_ASSIGN_OR_RETURN(e->pool_, ThreadPool::create({.n_threads = options.threads}));
  kernels::KernelOptions ko;
  ko.isa = options.isa;
  ko.pool = e->pool_.get();
  FRUGAL_ASSIGN_OR_RETURN(kernels::Kernels k, kernels::Kernels::create(ko));
  e->kernels_ = std::make_unique<kernels::Kernels>(std::move(k));
  v4::LoadOptions lo;
  lo.scan_values = options.scan_values;
  lo.placement = copying ? v4::WeightPlacement::kHugePages : v4::WeightPlacement::kMapped;
  lo.stream_experts = stream.stream;
  lo.stream_embed = stream.stream;  // one row per token: the table stays on disk (budget.h)
  if (draw_bytes) lo.progress = &bytes;
  if (options.unclamped_shared_expert) {
    lo.shared_expert_clamp = v4::SharedExpertClamp::kUnclamped;
  }
  if (shard.has_value()) {
    FRUGAL_RETURN_IF_ERROR(parallel::check_same_run(
        options.model_dir, std::string(kernels::isa_name(e->kernels_->isa()))));
    lo.shard = &*shard;
    Result<std::unique_ptr<v4::Model>> model =
        v4::Model::load(options.model_dir, *e->kernels_, lo, model_options(options));
    FRUGAL_RETURN_IF_ERROR(agreed(model.status(), "could not load its shard"));
    e->model_ = std::move(*model);
    FRUGAL_ASSIGN_OR_RETURN(e->exchange_, parallel::create_exchange(*shard));
    FRUGAL_RETURN_IF_ERROR(e->model_->set_exchange(e->exchange_.get()));
    e->parallel_summary_ = describe_share(*shard, e->model_->weights());
    std::fprintf(parallel::diagnostics(), "%s\n", e->parallel_summary_.c_str());  // each its own
  } else {
    FRUGAL_ASSIGN_OR_RETURN(
        e->model_, v4::Model::load(options.model_dir, *e->kernels_, lo, model_options(options)));
  }
  if (stream.stream) {
    Result<StreamSetup> started = start_streaming(stream, options, *e->model_);
    FRUGAL_RETURN_IF_ERROR(agreed(started.status(), "could not start its expert cache"));
    StreamSetup& setup = *started;
    e->expert_cache_ = std::move(setup.cache);
    e->embed_rows_ = std::move(setup.embed);
    e->budget_summary_ = std::move(setup.summary);
    std::fprintf(parallel::diagnostics(), "%s\n", e->budget_summary_.c_str());  // always
  }
  if (options.load_tokenizer) {
    Result<tokenizer::Tokenizer> loaded = tokenizer::Tokenizer::load_dir(options.model_dir);
    FRUGAL_RETURN_IF_ERROR(agreed(loaded.status(), "could not load the tokenizer"));
    tokenizer::Tokenizer tok = std::move(*loaded);
    if (tok.vocab_size() > e->model_->config().vocab_size) {
      return invalid_argument(options.model_dir +
                              "/tokenizer.json: " + std::to_string(tok.vocab_size()) +
                              " token ids, more than the model's vocab_size " +
                              std::to_string(e->model_->config().vocab_size));
    }
    e->tokenizer_ = std::make_unique<tokenizer::Tokenizer>(std::move(tok));
  }
  bytes.finish();
  e->load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  progress.finish(e->load_seconds_);
  return e;
}

Result<std::unique_ptr<kv::V4SequenceCache>> Engine::new_cache() const {
  kv::V4CacheOptions o{.format = options_.cache};
  const v4::Shard shard = model_->weights().shard;
  if (!shard.whole()) o.holds_block = [shard](int64_t b) { return shard.holds_block(b); };
  return kv::V4SequenceCache::create(model_->config(), o);
}

namespace {

// The value of a "Key:   N kB" line of a /proc file, in bytes; 0 when absent.
uint64_t proc_kib_field(const char* path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key)) {
      std::istringstream ss(line.substr(key.size()));
      uint64_t kb = 0;
      ss >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace

uint64_t peak_rss_bytes() { return proc_kib_field("/proc/self/status", "VmHWM:"); }

uint64_t resident_bytes() { return proc_kib_field("/proc/self/status", "VmRSS:"); }

uint64_t mem_available_bytes() { return proc_kib_field("/proc/meminfo", "MemAvailable:"); }

std::string format_bytes(uint64_t bytes) { return format_byte_count(bytes); }

}  // namespace frugal::engine
