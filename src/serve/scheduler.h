// Continuous batching for the server: many sequences advance together through
// Model::forward_batch, one step at a time, on one scheduler thread.
//
// A step stacks one token of every decoding sequence and prefill chunks of the sequences still
// reading their prompt, up to the model's chunk (Model::max_chunk rows): weights are read once per
// step for all of them, and a long prompt is cut into chunks so it never stalls the others'
// decode for more than one chunk. Sequences join and leave between steps: a finished, cancelled
// or failed sequence frees its cache before the next step. Admission is bounded by the number of
// sequences (`max_parallel`, the model's max_batch) and by the KV memory they may grow to
// (`kv_budget`: each sequence reserves kv_bytes_at(prompt + max_tokens) of engine/memory_plan.h);
// the queue behind them is bounded too, and submit() says so when it is full.
//
// Prefix reuse (serve/prefix_cache.h): before its prefill a sequence restores the longest stored
// snapshot whose ids start its prompt; during the prefill it stores snapshots at the positions its
// request names (`snapshot_points`: for a chat, where the last user turn starts, and the prompt
// less its last token), cutting chunks there so that cold and warm runs make the same calls. A
// sequence whose prompt another is prefilling at that moment (n > 1) waits for that snapshot.
//
// Clients talk to a sequence through its SequenceHandle: the scheduler appends text, tokens and
// the final state under the handle's lock and wakes the request's Notifier; the client takes what
// is new and may cancel, which frees the sequence within one step.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "sample/sampler.h"
#include "serve/mirror.h"
#include "serve/prefix_cache.h"

namespace frugal::serve {

struct SequenceParams {
  std::vector<int32_t> prompt;  // token ids, at least one
  int64_t max_tokens = 16;      // >= 1; clipped at the context end (FinishReason::kContextFull)
  sample::SamplerOptions sampling = {};
  std::vector<std::string> stop_strings = {};
  bool stop_at_eos = true;
  int32_t top_logprobs = -1;  // -1: no logprobs; else each token's and that many alternatives'
  std::vector<int64_t> snapshot_points = {};  // positions in (0, prompt size) to snapshot at
  bool capture_logits = false;                // keep the logits the first token came from (tests)
};

enum class FinishReason : uint8_t { kNone, kEos, kStop, kLength, kContextFull, kCancelled, kError };
const char* finish_reason_name(FinishReason r);

struct TokenInfo {
  int32_t id = 0;
  float logprob = 0.0f;                        // log softmax of the model's logits
  std::vector<std::pair<int32_t, float>> top;  // the most likely tokens, best first
};

// What a sequence produced since the client last took its update.
struct SequenceUpdate {
  std::string text;               // new text, valid UTF-8, stop strings and stop tokens withheld
  std::vector<TokenInfo> tokens;  // new sampled tokens (logprobs filled when asked for)
  bool started = false;           // the prefill is done (cached_tokens is known)
  bool finished = false;
  FinishReason reason = FinishReason::kNone;
  Status error;  // kError
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;        // prompt positions restored from the prefix cache
  int64_t completion_tokens = 0;    // sampled so far, a stop token included
  std::vector<float> first_logits;  // capture_logits: [vocab]
};

// Wakes one client waiting on any of its sequences.
class Notifier {
 public:
  void notify();
  // Waits until notify() was called since `*seen` was last updated, or the timeout; true if so.
  bool wait(uint64_t* seen, std::chrono::milliseconds timeout);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t count_ = 0;
};

class SequenceHandle {
 public:
  explicit SequenceHandle(std::shared_ptr<Notifier> notifier) : notifier_(std::move(notifier)) {}
  // Moves out what is new (text and tokens are then cleared here); false when nothing is.
  bool take(SequenceUpdate* out);
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }
  Notifier& notifier() { return *notifier_; }

 private:
  friend class Scheduler;
  template <typename F>
  void publish(F&& change);  // scheduler side: change the pending update, wake the client

  std::shared_ptr<Notifier> notifier_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  SequenceUpdate pending_;
  bool fresh_ = false;
};

struct SchedulerOptions {
  int32_t max_parallel = 8;   // sequences in flight (<= the engine's max_batch)
  int32_t max_queue = 64;     // sequences waiting behind them
  int64_t prefill_chunk = 0;  // prompt tokens of one sequence per step; 0 = the model's chunk
  uint64_t kv_budget = 0;     // bytes of kv cache the sequences in flight may grow to; 0 = any
  uint64_t prefix_cache_bytes = 0;  // snapshot store; 0 = no prefix reuse
  // A parallel run (docs/PARALLEL.md): each cache operation and step goes to the other processes
  // (serve/mirror.h); null alone. Outlives the scheduler.
  StepMirror* mirror = nullptr;
};

struct SchedulerStats {
  uint64_t submitted = 0, rejected = 0, finished = 0, cancelled = 0, failed = 0;
  uint64_t prompt_tokens = 0, cached_tokens = 0;
  uint64_t generated_tokens = 0;  // sampled so far, by every sequence (live, step by step)
  uint64_t steps = 0, step_rows = 0, step_sequences = 0;  // forward passes and what they held
  double busy_seconds = 0.0;                              // time inside forward passes
  int64_t active = 0, queued = 0;
  uint64_t kv_bytes = 0;           // held by the caches of the sequences in flight
  uint64_t kv_reserved_bytes = 0;  // what they may grow to (admission)
  PrefixCacheStats prefix;
};

class Scheduler {
 public:
  // `engine` (loaded with its tokenizer) must outlive the scheduler; the scheduler thread starts
  // here and is the only user of the engine's model from then on.
  static Result<std::unique_ptr<Scheduler>> create(engine::Engine& engine,
                                                   const SchedulerOptions& options);
  ~Scheduler();  // cancels what is in flight and joins the thread

  // Checks the parameters (sampler options, stop strings, prompt within the context, kv budget)
  // and queues the sequence. resource_exhausted when the queue is full, unsupported after drain().
  Result<std::shared_ptr<SequenceHandle>> submit(SequenceParams params,
                                                 std::shared_ptr<Notifier> notifier);
  // Stops admitting new sequences and waits until every queued and running one has finished.
  void drain();
  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }
  int64_t max_seq_len() const { return max_seq_len_; }

 private:
  struct Seq;
  Scheduler(engine::Engine& engine, const SchedulerOptions& options);
  void loop();
  void admit();
  bool waits_for_shared_prefill(const Seq& s,
                                const std::vector<std::unique_ptr<Seq>>& admitted) const;
  bool step();  // one forward pass; false when there was nothing to run
  Status after_forward(Seq& s, int64_t n_fed);
  void sample_token(Seq& s);
  void finish(Seq& s, FinishReason reason, Status error = ok_status());
  void release_finished();
  uint64_t kv_reserve_bytes(const SequenceParams& p) const;

  engine::Engine& engine_;
  const SchedulerOptions options_;
  const int64_t max_seq_len_;
  const int32_t vocab_;
  std::vector<int32_t> stop_tokens_;
  std::unique_ptr<PrefixCache> prefix_;

  mutable std::mutex mu_;  // guards queue_, accepting_, stopping_ and stats_ (but its live gauges)
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Seq>> queue_;
  bool accepting_ = true;
  bool stopping_ = false;
  SchedulerStats stats_;

  // Scheduler thread only.
  std::vector<std::unique_ptr<Seq>> active_;
  std::vector<std::unique_ptr<kv::V4SequenceCache>> free_caches_;
  std::vector<v4::BatchEntry> entries_;
  std::vector<Seq*> entry_seq_;
  std::vector<int64_t> entry_n_;
  std::vector<std::pair<float, int32_t>> top_scratch_;
  uint64_t step_tokens_ = 0;  // sampled in this step, added to the stats at its end
  std::thread thread_;
};

}  // namespace frugal::serve
