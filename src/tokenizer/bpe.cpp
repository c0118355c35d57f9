#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstring>

namespace frugal::tokenizer {

void BpeModel::set_byte_ids(const int32_t* byte_ids) {
  std::memcpy(byte_ids_, byte_ids, sizeof(byte_ids_));
}

void BpeModel::grow() {
  std::vector<Slot> old = std::move(slots_);
  size_t cap = old.empty() ? 1024 : old.size() * 2;
  slots_.assign(cap, Slot{kEmpty, {kNoMerge, -1}});
  mask_ = cap - 1;
  shift_ = 64 - __builtin_ctzll(cap);
  count_ = 0;
  for (const Slot& s : old) {
    if (s.key != kEmpty) insert(s.key, s.value);
  }
}

bool BpeModel::insert(uint64_t key, Merge m) {
  if ((count_ + 1) * 2 > slots_.size()) grow();
  for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
    if (slots_[i].key == key) return false;
    if (slots_[i].key == kEmpty) {
      slots_[i] = {key, m};
      ++count_;
      return true;
    }
  }
}

bool BpeModel::add_merge(int32_t left, int32_t right, int32_t merged) {
  return insert(key_of(left, right), Merge{uint32_t(count_), merged});
}

void BpeModel::finish() {
  if (slots_.empty()) grow();
}

BpeModel::Merge BpeModel::lookup(int32_t left, int32_t right) const {
  const uint64_t key = key_of(left, right);
  for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.key == key) return s.value;
    if (s.key == kEmpty) return {kNoMerge, -1};
  }
}

void BpeModel::encode_small(const uint8_t* p, size_t n, std::vector<int32_t>* out,
                            BpeScratch* s) const {
  if (n == 0) return;
  std::vector<int32_t>& ids = s->ids;
  std::vector<uint32_t>& ranks = s->ranks;  // ranks[j]: merge rank of (ids[j], ids[j + 1])
  ids.resize(n);
  for (size_t i = 0; i < n; ++i) ids[i] = byte_ids_[p[i]];
  ranks.resize(n);
  for (size_t j = 0; j + 1 < n; ++j) ranks[j] = lookup(ids[j], ids[j + 1]).rank;
  size_t m = n;
  while (m > 1) {
    size_t best = 0;
    uint32_t best_rank = kNoMerge;
    for (size_t j = 0; j + 1 < m; ++j) {
      if (ranks[j] < best_rank) {  // strict: the leftmost of equal ranks wins
        best_rank = ranks[j];
        best = j;
      }
    }
    if (best_rank == kNoMerge) break;
    ids[best] = lookup(ids[best], ids[best + 1]).merged;
    std::memmove(&ids[best + 1], &ids[best + 2], (m - best - 2) * sizeof(int32_t));
    std::memmove(&ranks[best + 1], &ranks[best + 2], (m - best - 2) * sizeof(uint32_t));
    --m;
    if (best > 0) ranks[best - 1] = lookup(ids[best - 1], ids[best]).rank;
    if (best + 1 < m) ranks[best] = lookup(ids[best], ids[best + 1]).rank;
  }
  out->insert(out->end(), ids.begin(), ids.begin() + m);
}

void BpeModel::encode_heap(const uint8_t* p, size_t n, std::vector<int32_t>* out,
                           BpeScratch* s) const {
  if (n == 0) return;
  // Symbols live at the byte offset of their first byte; prev/next link the live ones. A heap
  // entry is stale when its left symbol or its right neighbour has changed since it was pushed:
  // a symbol only ever grows, so (pos, left id, right id) identifies one state.
  std::vector<int32_t>& ids = s->ids;
  std::vector<int32_t>& prev = s->prev;
  std::vector<int32_t>& next = s->next;
  auto& heap = s->heap;
  ids.resize(n);
  prev.resize(n);
  next.resize(n);
  heap.clear();
  auto later = [](const BpeScratch::HeapEntry& a, const BpeScratch::HeapEntry& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;  // min-heap on (rank, pos)
  };
  auto push = [&](int32_t pos) {
    const int32_t q = next[pos];
    if (q < 0) return;
    const Merge mg = lookup(ids[pos], ids[q]);
    if (mg.rank == kNoMerge) return;
    heap.push_back({mg.rank, uint32_t(pos), ids[pos], ids[q]});
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (size_t i = 0; i < n; ++i) {
    ids[i] = byte_ids_[p[i]];
    prev[i] = int32_t(i) - 1;
    next[i] = i + 1 < n ? int32_t(i + 1) : -1;
  }
  for (size_t i = 0; i + 1 < n; ++i) push(int32_t(i));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const BpeScratch::HeapEntry e = heap.back();
    heap.pop_back();
    const int32_t pos = int32_t(e.pos);
    const int32_t q = next[pos];
    if (ids[pos] != e.left || q < 0 || ids[q] != e.right) continue;  // stale
    ids[pos] = lookup(e.left, e.right).merged;
    ids[q] = -1;  // dead
    next[pos] = next[q];
    if (next[q] >= 0) prev[next[q]] = pos;
    if (prev[pos] >= 0) push(prev[pos]);
    push(pos);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out->push_back(ids[i]);
}

}  // namespace frugal::tokenizer
