// Fixed-size entries stored in pages of `page_entries` entries each, allocated as the sequence
// grows (the cache never reserves for the longest possible sequence up front).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/memory.h"
#include "core/status.h"

namespace frugal::kv {

class PagedEntries {
 public:
  PagedEntries() = default;
  PagedEntries(uint64_t entry_bytes, int64_t page_entries, MemoryStats* stats)
      : entry_bytes_(entry_bytes), page_entries_(page_entries), stats_(stats) {}

  // Allocates pages until entries [0, n) exist.
  Status reserve(int64_t n);
  int64_t capacity() const { return static_cast<int64_t>(pages_.size()) * page_entries_; }
  uint64_t entry_bytes() const { return entry_bytes_; }
  std::byte* entry(int64_t j) {
    return pages_[static_cast<size_t>(j / page_entries_)].data() +
           (j % page_entries_) * entry_bytes_;
  }
  const std::byte* entry(int64_t j) const {
    return pages_[static_cast<size_t>(j / page_entries_)].data() +
           (j % page_entries_) * entry_bytes_;
  }
  // Bytes of the page table itself (the pages are charged to the MemoryStats).
  uint64_t table_bytes() const { return pages_.capacity() * sizeof(AlignedBuffer); }
  void release();  // frees every page

 private:
  uint64_t entry_bytes_ = 0;
  int64_t page_entries_ = 1;
  MemoryStats* stats_ = nullptr;
  std::vector<AlignedBuffer> pages_;
};

}  // namespace frugal::kv
