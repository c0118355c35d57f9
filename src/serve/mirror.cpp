#include "serve/mirror.h"

#include <memory>
#include <string>

#include "parallel/world.h"

namespace frugal::serve {
namespace {

// The words of a step: [ops..., kEnd, entries, per entry: slot, logits mode, n, ids...] or kStop.
enum Op : int64_t { kNew = 1, kClear, kFree, kRestore, kSnapshot, kDrop, kEnd, kStop };

}  // namespace

StepMirror::~StepMirror() { (void)stop(); }

void StepMirror::add(std::initializer_list<int64_t> op) {
  std::lock_guard<std::mutex> lock(mu_);
  ops_.insert(ops_.end(), op.begin(), op.end());
}

int64_t StepMirror::slot_of(const kv::V4SequenceCache* cache) {
  auto [it, fresh] = slots_.try_emplace(cache, next_slot_);
  if (fresh) add({kNew, next_slot_++});
  return it->second;
}

void StepMirror::cleared(const kv::V4SequenceCache* cache) { add({kClear, slot_of(cache)}); }

void StepMirror::freed(const kv::V4SequenceCache* cache) {
  auto it = slots_.find(cache);
  if (it == slots_.end()) return;  // never in a step: the others never made it
  add({kFree, it->second});
  slots_.erase(it);
}

void StepMirror::restored(const kv::V4SequenceCache* cache, uint64_t snapshot) {
  add({kRestore, slot_of(cache), static_cast<int64_t>(snapshot)});
}

void StepMirror::snapshotted(const kv::V4SequenceCache* cache, uint64_t snapshot) {
  add({kSnapshot, slot_of(cache), static_cast<int64_t>(snapshot)});
}

void StepMirror::dropped(uint64_t snapshot) { add({kDrop, static_cast<int64_t>(snapshot)}); }

Status StepMirror::before_forward(std::span<const v4::BatchEntry> entries) {
  std::vector<int64_t> words;
  for (const v4::BatchEntry& e : entries) slot_of(static_cast<kv::V4SequenceCache*>(e.cache));
  {
    std::lock_guard<std::mutex> lock(mu_);
    words.swap(ops_);
  }
  words.push_back(kEnd);
  words.push_back(static_cast<int64_t>(entries.size()));
  for (const v4::BatchEntry& e : entries) {
    words.push_back(slots_.at(static_cast<kv::V4SequenceCache*>(e.cache)));
    words.push_back(static_cast<int64_t>(e.logits_mode));
    words.push_back(static_cast<int64_t>(e.ids.size()));
    words.insert(words.end(), e.ids.begin(), e.ids.end());
  }
  return parallel::share_words(&words);
}

Status StepMirror::stop() {
  if (stopped_) return ok_status();
  stopped_ = true;
  std::vector<int64_t> words = {kStop};
  return parallel::share_words(&words);
}

Status run_worker(engine::Engine& engine) {
  const int64_t vocab = engine.config().vocab_size;
  std::unordered_map<int64_t, std::unique_ptr<kv::V4SequenceCache>> caches;
  std::unordered_map<int64_t, std::vector<float>> logits;  // [vocab] or [n, vocab] per slot
  std::unordered_map<int64_t, kv::V4CacheSnapshot> snapshots;
  std::vector<int64_t> words;
  std::vector<std::vector<int32_t>> ids;
  std::vector<v4::BatchEntry> entries;
  auto cache_of = [&](int64_t slot) -> Result<kv::V4SequenceCache*> {
    auto it = caches.find(slot);
    if (it == caches.end()) return internal_error("serve worker: no cache " + std::to_string(slot));
    return it->second.get();
  };
  for (;;) {
    FRUGAL_RETURN_IF_ERROR(parallel::share_words(&words));
    size_t i = 0;
    auto next = [&]() -> int64_t { return i < words.size() ? words[i++] : kStop; };
    for (int64_t op = next(); op != kEnd; op = next()) {
      if (op == kStop) return ok_status();
      const int64_t slot = next();
      switch (op) {
        case kNew: {
          FRUGAL_ASSIGN_OR_RETURN(caches[slot], engine.new_cache());
          break;
        }
        case kClear: {
          FRUGAL_ASSIGN_OR_RETURN(kv::V4SequenceCache * c, cache_of(slot));
          c->clear();
          break;
        }
        case kFree:
          caches.erase(slot);
          logits.erase(slot);
          break;
        case kRestore: {
          FRUGAL_ASSIGN_OR_RETURN(kv::V4SequenceCache * c, cache_of(slot));
          auto snap = snapshots.find(next());
          if (snap == snapshots.end()) return internal_error("serve worker: no such snapshot");
          FRUGAL_RETURN_IF_ERROR(c->restore(snap->second));
          break;
        }
        case kSnapshot: {
          FRUGAL_ASSIGN_OR_RETURN(kv::V4SequenceCache * c, cache_of(slot));
          FRUGAL_ASSIGN_OR_RETURN(snapshots[next()], c->snapshot());
          break;
        }
        case kDrop:
          snapshots.erase(slot);  // the word after kDrop is the snapshot's id
          break;
        default:
          return internal_error("serve worker: unknown step word " + std::to_string(op));
      }
    }
    const int64_t n_entries = next();
    ids.assign(static_cast<size_t>(n_entries), {});
    entries.assign(static_cast<size_t>(n_entries), {});
    for (int64_t e = 0; e < n_entries; ++e) {
      const int64_t slot = next();
      const auto mode = static_cast<v4::LogitsMode>(next());
      const int64_t n = next();
      for (int64_t t = 0; t < n; ++t) ids[e].push_back(static_cast<int32_t>(next()));
      const int64_t rows = mode == v4::LogitsMode::kAll ? n : mode == v4::LogitsMode::kLast;
      std::vector<float>& out = logits[slot];
      if (static_cast<int64_t>(out.size()) < rows * vocab) out.resize(rows * vocab);
      FRUGAL_ASSIGN_OR_RETURN(kv::V4SequenceCache * c, cache_of(slot));
      entries[e] = {.cache = c,
                    .ids = ids[e],
                    .logits_mode = mode,
                    .logits = std::span<float>(out.data(), static_cast<size_t>(rows * vocab))};
    }
    // Fails here only where it failed on rank 0 too (same checks), or the model stops the run.
    (void)engine.model().forward_batch(entries);
  }
}

}  // namespace frugal::serve
