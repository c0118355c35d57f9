// The server in a parallel run (docs/PARALLEL.md): the HTTP front end and the scheduler run on
// rank 0 alone, since what a step holds depends on when requests arrive; every other process
// repeats rank 0's steps on its own caches. Before each forward pass rank 0 hands every process
// the step: what happened to the sequences' caches since the last one (a cache made, cleared,
// freed, restored from a prefix snapshot, snapshotted, a snapshot dropped), in the order it
// happened, then the batch (which cache, which tokens, which logits). The others apply the same
// operations to their caches, which hold their own blocks (a pipeline stage's), and run the same
// forward_batch; the logits come back to every process through the model's exchange.
//
// Rank 0 side: StepMirror, which the scheduler tells each cache operation as it makes it.
// Other ranks: run_worker, until rank 0 says stop (StepMirror::stop, also from its destructor,
// so a server that fails to start still lets the others finish).
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "kv/v4_cache.h"
#include "model/v4/model.h"

namespace frugal::serve {

class StepMirror {
 public:
  StepMirror() = default;
  ~StepMirror();  // stop()
  StepMirror(const StepMirror&) = delete;
  StepMirror& operator=(const StepMirror&) = delete;

  // The cache operations, as the scheduler makes them (a cache seen for the first time is made).
  void cleared(const kv::V4SequenceCache* cache);
  void freed(const kv::V4SequenceCache* cache);
  void restored(const kv::V4SequenceCache* cache, uint64_t snapshot);
  void snapshotted(const kv::V4SequenceCache* cache, uint64_t snapshot);
  void dropped(uint64_t snapshot);  // any thread: a prefix entry goes away
  uint64_t new_snapshot_id() { return ++last_snapshot_; }

  // Hands the operations so far and the batch to every process (before forward_batch).
  Status before_forward(std::span<const v4::BatchEntry> entries);
  // Tells the others to stop; once.
  Status stop();

 private:
  int64_t slot_of(const kv::V4SequenceCache* cache);  // makes it (kNew) on first sight
  void add(std::initializer_list<int64_t> op);

  std::mutex mu_;  // guards ops_ (dropped() may come from another thread)
  std::vector<int64_t> ops_;
  std::unordered_map<const kv::V4SequenceCache*, int64_t> slots_;
  int64_t next_slot_ = 0;
  uint64_t last_snapshot_ = 0;
  bool stopped_ = false;
};

// Every process but rank 0 of a parallel `frugal serve`: repeats rank 0's steps until it stops.
Status run_worker(engine::Engine& engine);

}  // namespace frugal::serve
