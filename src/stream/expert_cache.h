// The expert cache: routed experts streamed from the checkpoint into a fixed number of slots
// (one expert each: w1, w2, w3 and their scales), under the memory budget (engine/budget.h).
//
// Reads: a few I/O threads run the reads (expert_files.h: O_DIRECT) of a queue that serves the
// current layer's misses before any prefetch. A layer's reads start the moment its routing is
// known (begin_layer); next() hands out the experts already in memory first and the others as
// their reads complete, so compute overlaps the reads. The MoE layer also names its guess of the
// next block's experts (hint), whose reads queue behind the current layer's.
//
// Policy: an expert's score counts its uses, halving every `half_life` layer steps (recency and
// frequency in one number); the victim is the lowest-scored slot that no layer in progress uses
// and whose read is not running (an empty slot first; a queued prefetch may be taken back).
// A prefetch takes an empty slot, or evicts one whose score is at most the guessed expert's plus
// one use; a hint never displaces another hint's pending read. An exact hint (a hash layer's
// experts, which will be asked for) evicts like the demand reads it replaces, and until its block
// runs, its expert is taken by a demand read only when no other slot can be freed. Experts pinned
// from a profile (`frugal profile`) are read at start and never evicted (at most half the slots).
//
// First read of an expert: its codes are checked as the loader checks resident weights (e4m3 and
// e8m0 NaN codes, quant::check_weight_codes), so start-up reads only the resident part.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/memory.h"
#include "core/status.h"
#include "model/v4/expert_source.h"
#include "model/v4/weights.h"
#include "stream/expert_files.h"

namespace frugal::stream {

struct ExpertCacheOptions {
  int64_t slots = 0;      // expert slots (at least 2 x n_activated_experts)
  int io_threads = 8;     // reads in flight (a layer asks for top-k = 6 at once)
  bool direct_io = true;  // O_DIRECT where the file system allows it
  bool prefetch = true;   // act on the MoE layer's next-block hints
  double half_life = 0;   // layer steps in which a use's weight halves; 0 = 16 x blocks
  // (block, expert) pairs read at start and never evicted; at most min(slots / 2, slots - 2 x
  // topk) are taken, hottest first.
  std::vector<std::pair<int32_t, int32_t>> pinned;
};

struct ExpertCacheStats {
  uint64_t layers = 0;            // begin_layer calls
  uint64_t requests = 0;          // experts asked for
  uint64_t hits = 0;              // in memory (or its read already under way) when asked for
  uint64_t misses = 0;            // a read started by the request
  uint64_t prefetch_reads = 0;    // reads queued by a hint (prefetch_dropped of them never ran)
  uint64_t prefetch_used = 0;     // of those, experts a layer then asked for
  uint64_t prefetch_dropped = 0;  // of those, exact hints not followed, dropped before reading
  uint64_t hinted = 0;            // requested experts of a hinted block
  uint64_t hinted_right = 0;      // of those, in the hint
  uint64_t reads = 0;             // experts read
  uint64_t bytes_read = 0;        // bytes read from the files
  uint64_t evictions = 0;
  double read_seconds = 0;  // summed over the I/O threads
  double wait_seconds = 0;  // the compute thread blocked in next()
  // Requests served without a demand read (prefetched ones included), and those the cache held
  // before any hint (what memory saves: a prefetched expert was still read from disk).
  double hit_rate() const { return requests ? static_cast<double>(hits) / requests : 0.0; }
  double cache_hit_rate() const {
    return requests ? static_cast<double>(hits - prefetch_used) / requests : 0.0;
  }
  double hint_rate() const { return hinted ? static_cast<double>(hinted_right) / hinted : 0.0; }
  // Prefetches read whose expert no layer asked for while these statistics ran (wrong guesses;
  // one asked for later counts as used in that later window).
  uint64_t unused_prefetches() const {
    const uint64_t ran = prefetch_reads - std::min(prefetch_dropped, prefetch_reads);
    return ran > prefetch_used ? ran - prefetch_used : 0;
  }
  // bytes_read less the unused prefetches' share: what the experts the layers asked for had to
  // bring in (every read is one expert of the same size).
  double needed_bytes() const {
    if (reads == 0) return 0.0;
    const uint64_t unused = std::min(unused_prefetches(), reads);
    return static_cast<double>(bytes_read) * static_cast<double>(reads - unused) /
           static_cast<double>(reads);
  }
};

// A replay of recorded expert reads (ExpertCache::replay_reads).
struct ReadReplay {
  uint64_t reads = 0;  // expert reads replayed
  uint64_t bytes = 0;  // bytes read
  double seconds = 0;  // wall time, first read issued to last one done
  int threads = 0;     // reads in flight
  double gbps() const { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0.0; }
};

class ExpertCache final : public v4::ExpertSource {
 public:
  // `weights` must have been loaded with LoadOptions::stream_experts and outlive the cache.
  static Result<std::unique_ptr<ExpertCache>> create(const v4::ModelWeights& weights,
                                                     const ExpertCacheOptions& options);
  ~ExpertCache() override;

  // v4::ExpertSource
  Status begin_layer(int32_t block, std::span<const int32_t> experts) override;
  using v4::ExpertSource::next;
  Result<size_t> next(std::span<v4::HandedExpert> out) override;
  bool wants_hints() const override { return options_.prefetch; }
  void hint(int32_t block, std::span<const int32_t> experts, bool exact) override;

  ExpertCacheStats stats() const;
  void reset_stats();

  // The disk side of frugal bench's roofline. While recording, every expert read the cache starts
  // is noted (in the order started). replay_reads() then performs exactly those reads again
  // (the same files, offsets and lengths, through the same read path) with io_threads reads in
  // flight and nothing else to do, into buffers of its own (io_threads x slot_bytes(), freed on
  // return), and clears the record: the rate at which this disk serves those reads now, which is
  // what decode could reach if it never left the disk idle. It measures, so it is for benchmarks;
  // call it between forwards (it does not touch the slots). A fault is an error as in a forward.
  void record_reads(bool on);
  Result<ReadReplay> replay_reads();
  int64_t slots() const { return static_cast<int64_t>(slots_.size()); }
  uint64_t slot_bytes() const { return slot_bytes_; }
  uint64_t bytes() const { return memory_.bytes(); }  // slot memory held
  bool direct_io() const { return files_->direct(); }
  // Drops the page cache of the checkpoint files (what the load of the resident part left).
  void drop_page_cache() const { files_->drop_page_cache(); }
  // The checkpoint's files as this cache opened them, for another reader of the same checkpoint
  // (stream::EmbedRows): their reads are stateless, so sharing them is safe from any thread.
  std::shared_ptr<const ExpertFiles> files() const { return files_; }
  int64_t pinned() const { return pinned_count_; }

 private:
  enum class SlotState : uint8_t { kEmpty, kQueued, kReading, kReady, kFailed };
  struct Slot {
    std::byte* data = nullptr;
    int64_t key = -1;  // block * n_experts + expert
    SlotState state = SlotState::kEmpty;
    uint32_t generation = 0;  // bumped when the slot changes hands (stale jobs skip)
    int32_t pins = 0;         // uses by the layer in progress
    bool pinned = false;      // from a profile: never evicted
    bool prefetched = false;  // read by a hint and not asked for yet
    bool exact = false;       // ... by an exact hint (will be asked for)
    Status error;
    v4::ExpertWeights views;
  };
  struct Job {
    int32_t slot;
    uint32_t generation;
  };
  struct Score {
    double value = 0;
    uint64_t tick = 0;
  };

  ExpertCache() = default;
  void io_loop();
  // With mu_ held: the slot a new read may take (an empty one, else the policy's victim), -1
  // when none may be taken; take_slot also evicts what it holds.
  int32_t find_slot(bool demand) const;
  int32_t take_slot(bool demand);
  void assign(int32_t slot, int64_t key, bool demand, bool exact = false);
  void issue_deferred();
  void unpin_handed();  // with mu_ held: the slots the last next() handed out
  double score_now(int64_t key) const;
  Status finish_read(Slot& s, int64_t key);  // views + first-read code checks
  std::string expert_name(int64_t key) const;

  const v4::ModelWeights* weights_ = nullptr;
  ExpertCacheOptions options_;
  int32_t n_experts_ = 0;
  int32_t topk_ = 0;
  std::shared_ptr<ExpertFiles> files_;
  std::vector<ExpertPlan> plans_;  // [blocks * n_experts]; empty plans for unlocated experts
  uint64_t slot_bytes_ = 0;
  MemoryStats memory_;
  AlignedBuffer buffer_;
  int64_t pinned_count_ = 0;

  mutable std::mutex mu_;
  std::condition_variable ready_cv_;  // a read finished
  std::condition_variable jobs_cv_;   // a job queued, or stopping
  std::vector<Slot> slots_;
  std::vector<int32_t> slot_of_;  // [key] -> slot, -1
  std::vector<Score> scores_;     // [key]
  std::vector<uint8_t> checked_;  // [key] codes checked on a first read
  std::deque<Job> demand_, prefetch_;
  bool stop_ = false;
  uint64_t tick_ = 0;
  // The layer in progress.
  int32_t block_ = -1;
  std::vector<int32_t> want_;                   // experts asked for, ascending
  std::vector<uint8_t> handed_;                 // [i] want_[i] handed out
  std::vector<int32_t> deferred_;               // keys still waiting for a slot
  std::vector<int32_t> handed_slots_;           // handed out last (unpinned at the next next())
  std::vector<uint8_t> hinted_;                 // [block] a hint is pending for the block
  std::vector<std::vector<uint8_t>> hint_set_;  // [block][expert]
  ExpertCacheStats stats_;
  bool recording_ = false;
  std::vector<int64_t> recorded_;  // keys of the reads started while recording
  std::vector<std::thread> threads_;
};

}  // namespace frugal::stream
