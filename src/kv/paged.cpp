#include "kv/paged.h"

namespace frugal::kv {

Status PagedEntries::reserve(int64_t n) {
  while (capacity() < n) {
    FRUGAL_ASSIGN_OR_RETURN(
        AlignedBuffer page,
        AlignedBuffer::allocate(entry_bytes_ * static_cast<uint64_t>(page_entries_), stats_,
                                {.huge_pages = HugePages::kNever}));
    pages_.push_back(std::move(page));
  }
  return ok_status();
}

void PagedEntries::release() {
  pages_.clear();
  pages_.shrink_to_fit();
}

}  // namespace frugal::kv
