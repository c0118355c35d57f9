#include "core/arena.h"

#include <string>
#include <utility>

namespace frugal {
namespace {
// What a zero-byte request gets when the arena has no buffer: aligned and non-null. Const (no
// mutable globals); a zero-byte allocation is never written through.
alignas(Arena::kAlignment) const std::byte kEmptyAllocation[Arena::kAlignment] = {};
}  // namespace

Arena::Arena(Arena&& other) noexcept
    : buffer_(std::move(other.buffer_)),
      used_(std::exchange(other.used_, 0)),
      high_water_(std::exchange(other.high_water_, 0)),
      failed_request_(std::exchange(other.failed_request_, 0)),
      failed_used_(std::exchange(other.failed_used_, 0)) {}

Arena& Arena::operator=(Arena&& other) noexcept {
  if (this != &other) {
    buffer_ = std::move(other.buffer_);
    used_ = std::exchange(other.used_, 0);
    high_water_ = std::exchange(other.high_water_, 0);
    failed_request_ = std::exchange(other.failed_request_, 0);
    failed_used_ = std::exchange(other.failed_used_, 0);
  }
  return *this;
}

Result<Arena> Arena::create(uint64_t capacity_bytes, MemoryStats* stats,
                            const AllocOptions& options) {
  Arena arena;
  FRUGAL_ASSIGN_OR_RETURN(arena.buffer_, AlignedBuffer::allocate(capacity_bytes, stats, options));
  return arena;
}

void* Arena::allocate_bytes(uint64_t bytes) {
  const uint64_t capacity = buffer_.size();
  // used_ <= capacity <= kMaxAllocationBytes, so rounding up cannot overflow.
  const uint64_t start = (used_ + kAlignment - 1) / kAlignment * kAlignment;
  if (bytes == 0) {
    if (buffer_.data() != nullptr && start <= capacity) return buffer_.data() + start;
    return const_cast<std::byte*>(kEmptyAllocation);
  }
  if (start > capacity || bytes > capacity - start) {
    note_failure(bytes);
    return nullptr;
  }
  used_ = start + bytes;
  if (used_ > high_water_) high_water_ = used_;
  return buffer_.data() + start;
}

void Arena::reset(Mark m) {
  FRUGAL_CHECK_MSG(m.offset <= used_, "Arena::reset to a mark past the current position");
  used_ = m.offset;
}

void Arena::note_failure(uint64_t bytes) {
  if (failed_request_ != 0) return;  // keep the first: later failures are usually its echo
  failed_request_ = bytes;
  failed_used_ = used_;
}

Status Arena::status() const {
  if (!failed()) return ok_status();
  const std::string request = failed_request_ == UINT64_MAX
                                  ? std::string("a request whose size overflows 64 bits")
                                  : "a request of " + std::to_string(failed_request_) + " bytes";
  return resource_exhausted("activation arena out of space: " + request + " with " +
                            std::to_string(failed_used_) + " of " + std::to_string(capacity()) +
                            " bytes in use (high water " + std::to_string(high_water_) +
                            "); the arena must be sized larger at start-up");
}

}  // namespace frugal
