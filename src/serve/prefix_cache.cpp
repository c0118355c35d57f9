#include "serve/prefix_cache.h"

#include <algorithm>

namespace frugal::serve {
namespace {

bool is_prefix(std::span<const int32_t> key, std::span<const int32_t> ids) {
  return key.size() <= ids.size() && std::equal(key.begin(), key.end(), ids.begin());
}

}  // namespace

uint64_t PrefixEntry::bytes() const {
  return snapshot.bytes() + ids.size() * sizeof(int32_t) + sizeof(PrefixEntry);
}

PrefixCache::List::iterator PrefixCache::find_exact(std::span<const int32_t> ids) {
  return std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) {
    return e->ids.size() == ids.size() && is_prefix(e->ids, ids);
  });
}

std::shared_ptr<const PrefixEntry> PrefixCache::lookup(std::span<const int32_t> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.lookups;
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const std::vector<int32_t>& key = (*it)->ids;
    if (key.size() < ids.size() && is_prefix(key, ids) &&
        (best == entries_.end() || key.size() > (*best)->ids.size())) {
      best = it;
    }
  }
  if (best == entries_.end()) return nullptr;
  entries_.splice(entries_.begin(), entries_, best);  // most recently used
  ++stats_.hits;
  stats_.hit_tokens += entries_.front()->ids.size();
  return entries_.front();
}

bool PrefixCache::contains(std::span<const int32_t> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  return find_exact(ids) != entries_.end();
}

void PrefixCache::insert(std::shared_ptr<const PrefixEntry> entry) {
  const uint64_t bytes = entry->bytes();
  if (bytes > max_bytes_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto old = find_exact(entry->ids); old != entries_.end()) {
    stats_.bytes -= (*old)->bytes();
    entries_.erase(old);
  }
  entries_.push_front(std::move(entry));
  stats_.bytes += bytes;
  ++stats_.inserts;
  while (stats_.bytes > max_bytes_) {  // the new entry fits alone, so this stops before it
    stats_.bytes -= entries_.back()->bytes();
    entries_.pop_back();
    ++stats_.evictions;
  }
  stats_.entries = entries_.size();
}

void PrefixCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
  stats_.bytes = 0;
  stats_.entries = 0;
}

PrefixCacheStats PrefixCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace frugal::serve
