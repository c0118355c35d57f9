// The DeepSeek-V4 cache of one sequence (architecture doc §2.3-§2.5, §3.1): per block the window
// ring (window_size entries, slot = position mod window_size), the compressed entries (one per
// `ratio` tokens), the indexer keys (CSA blocks, one per 4 tokens) and the f32 decode state of
// each compressor. Implements the model's SequenceCacheView.
//
// Growth: the ring, the compressed entries and the indexer keys live in pages of page_entries
// entries, allocated by reserve() as the sequence grows (the ring stops at window_size entries).
// The compressor state is fixed per sequence ([c*ratio, c*width] x 2 floats, doc §3.1) and is
// allocated with the cache. memory_report() counts every byte held, bookkeeping included.
//
// A new sequence (create, or clear) starts with kv_state = 0 and score_state = -inf: no state
// leaks from one sequence into the next (doc §2.B).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/memory.h"
#include "core/status.h"
#include "kv/paged.h"
#include "kv/v4_entry.h"
#include "model/v4/cache.h"
#include "model/v4/config.h"

namespace frugal::kv {

struct V4CacheOptions {
  CacheFormat format = CacheFormat::kFp8;
  int64_t page_entries = 16;  // entries per page (window, compressed, indexer keys)
  // The blocks this process runs (a pipeline stage, v4::Shard::holds_block): the others never
  // grow. Unset: every block.
  std::function<bool(int64_t block)> holds_block = nullptr;
};

// Bytes held by one sequence's cache, by part.
struct V4MemoryReport {
  uint64_t window = 0;
  uint64_t compressed = 0;
  uint64_t index_keys = 0;
  uint64_t compressor_state = 0;
  uint64_t bookkeeping = 0;  // the cache object, its per-block tables, page tables, undo log
  uint64_t total() const {
    return window + compressed + index_keys + compressor_state + bookkeeping;
  }
  std::string to_string() const;
};

// A copy of a sequence's cache contents (entries in the cache's own byte format).
struct V4CacheSnapshot {
  CacheFormat format = CacheFormat::kFp8;
  int64_t n_blocks = 0;
  int64_t length = 0;
  int64_t mtp_length = 0;
  std::vector<std::vector<std::byte>> parts;  // per block: window, compressed, keys, state
  uint64_t bytes() const;
};

class V4SequenceCache final : public v4::SequenceCacheView {
 public:
  static Result<std::unique_ptr<V4SequenceCache>> create(const v4::DeepSeekV4Config& config,
                                                         const V4CacheOptions& options = {});

  // ---- SequenceCacheView ----
  int64_t length() const override { return length_; }
  int64_t mtp_length() const override { return mtp_length_; }
  Status reserve(int64_t tokens) override;
  void set_length(int64_t tokens) override { length_ = tokens; }
  void set_mtp_length(int64_t tokens) override { mtp_length_ = tokens; }
  bool rope_bf16() const override { return options_.format != CacheFormat::kF32; }
  void store_window(int32_t block, int64_t pos, const float* kv) override;
  void load_window(int32_t block, int64_t pos, float* kv) const override;
  void store_compressed(int32_t block, int64_t j, const float* entry) override;
  void load_compressed(int32_t block, int64_t j, float* entry) const override;
  void store_index_key(int32_t block, int64_t j, const float* key) override;
  quant::WeightView load_index_keys(int32_t block, int64_t j0, int64_t n,
                                    std::byte* buf) const override;
  v4::CompressorState compressor_state(int32_t block, v4::CompressorSlot slot) override;
  void will_write_compressor_rows(int32_t block, v4::CompressorSlot slot, int64_t pos, int64_t row0,
                                  int64_t n_rows) override;

  // ---- sequence management ----
  // Starts a new sequence: frees the pages, resets the compressor state to 0 / -inf.
  void clear();
  V4MemoryReport memory_report() const;
  const V4CacheOptions& options() const { return options_; }
  uint64_t entry_bytes() const { return entry_.bytes(); }
  uint64_t index_key_bytes() const { return key_.bytes(); }

  Result<V4CacheSnapshot> snapshot() const;
  // Replaces this cache's contents by the snapshot (same config and format).
  Status restore(const V4CacheSnapshot& snap);

  // ---- speculative decoding (v4_speculation.cpp) ----
  // Starts an undo log of what the positions processed from now on overwrite in place (window
  // ring slots, compressor state rows; compressed entries and indexer keys past the kept length
  // are never read, so they need none), with room for `max_positions` positions of the main model
  // and as many of the MTP block. Allocates the log when it must grow, so call it outside the
  // forward pass; a log of the same size is reused without allocating. One at a time.
  Status begin_speculation(int64_t max_positions);
  // Undoes, newest first, every change made by main positions >= `length` and MTP positions >=
  // `mtp_length` since begin_speculation, sets the lengths and ends the log: the cache is then
  // byte for byte what it would be had it never seen those positions. The lengths must lie
  // between those at begin_speculation and now.
  Status rollback(int64_t length, int64_t mtp_length);
  // Keeps everything and ends the log.
  void end_speculation();
  bool speculating() const { return undo_.active; }

 private:
  struct Block {
    bool held = true;  // V4CacheOptions::holds_block
    int64_t ratio = 0;
    bool csa = false;
    PagedEntries window;
    PagedEntries compressed;
    PagedEntries keys;
    v4::CompressorState main;     // views into `state`
    v4::CompressorState indexer;  // CSA only
    AlignedBuffer state;          // kv + score for main (and indexer) compressors
  };
  V4SequenceCache() = default;
  void reset_state(Block& b);
  int64_t window_entries(int64_t tokens) const { return std::min(tokens, window_size_); }

  V4CacheOptions options_;
  int64_t window_size_ = 0;
  int64_t n_main_blocks_ = 0;  // blocks >= this are MTP blocks (they follow mtp_length)
  EntryCodec entry_;
  IndexKeyCodec key_;
  std::vector<Block> blocks_;
  // One saved region: `bytes` bytes at `target`, as they were before position `pos` of `block`
  // overwrote them, kept at `offset` in UndoLog::saved.
  struct UndoRecord {
    std::byte* target = nullptr;
    uint64_t offset = 0;
    uint64_t bytes = 0;
    int64_t pos = 0;
    int32_t block = 0;
  };
  struct UndoLog {
    bool active = false;
    int64_t length0 = 0, mtp_length0 = 0;  // the lengths at begin_speculation
    std::vector<UndoRecord> records;       // in the order of the writes
    std::vector<std::byte> saved;          // capacity fixed at begin_speculation
    uint64_t used = 0;
  };
  void save_for_undo(int32_t block, int64_t pos, std::byte* target, uint64_t bytes);
  uint64_t undo_bytes_per_position() const;

  int64_t length_ = 0;
  int64_t mtp_length_ = 0;
  UndoLog undo_;
  MemoryStats window_stats_, compressed_stats_, key_stats_, state_stats_;
};

}  // namespace frugal::kv
