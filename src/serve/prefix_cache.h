// Prefix reuse for the server: snapshots of a sequence's whole V4 state (window ring, compressed
// entries, indexer keys, compressor state: kv::V4CacheSnapshot) keyed by the token ids that built
// it. A request whose prompt starts with a stored key restores that snapshot into its cache and
// prefills only the rest, instead of the whole prompt.
//
// Exactness: a snapshot is a byte copy of the cache after positions [0, L), so the continuation
// computes what a cold run computes from the same cache. The scheduler splits every prefill at
// the snapshot points a request names (the same points in a cold and a warm run of one prompt),
// so the forward passes after L are the same calls in both. Bit-identical logits then follow for
// any kernel set when the batch around the sequence is the same (a lone request), and always with
// the scalar kernels (docs/ARCHITECTURE.md "Serving").
//
// Bounded by bytes (snapshot bytes + ids), least recently used entry evicted first. Lookups scan
// the entries (there are few: each is at least one prefill long) comparing ids. Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "kv/v4_cache.h"

namespace frugal::serve {

struct PrefixEntry {
  std::vector<int32_t> ids;  // the positions [0, ids.size()) the snapshot holds
  kv::V4CacheSnapshot snapshot;
  // A parallel run (serve/mirror.h): the id the other processes know their own snapshot by, and
  // what tells them to drop it when this entry goes away.
  uint64_t id = 0;
  std::shared_ptr<void> on_drop;
  uint64_t bytes() const;
};

struct PrefixCacheStats {
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t hit_tokens = 0;  // positions restored instead of prefilled
  uint64_t inserts = 0;
  uint64_t evictions = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;
};

class PrefixCache {
 public:
  explicit PrefixCache(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  // The longest entry whose ids are a prefix of `ids` and shorter than it (at least one position
  // must remain to produce logits), or null.
  std::shared_ptr<const PrefixEntry> lookup(std::span<const int32_t> ids);
  // Whether an entry with exactly these ids is stored (the scheduler skips a new snapshot then).
  bool contains(std::span<const int32_t> ids);
  // Stores an entry (replacing one with the same ids) and evicts the least recently used until
  // the total fits; an entry larger than the whole budget is not stored.
  void insert(std::shared_ptr<const PrefixEntry> entry);
  void clear();
  PrefixCacheStats stats() const;
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  using List = std::list<std::shared_ptr<const PrefixEntry>>;  // most recent first
  List::iterator find_exact(std::span<const int32_t> ids);

  const uint64_t max_bytes_;
  mutable std::mutex mu_;
  List entries_;
  PrefixCacheStats stats_;
};

}  // namespace frugal::serve
