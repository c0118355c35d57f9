// Bump arena for activations and other per-step scratch: one aligned buffer sized at start-up,
// so the forward pass never calls malloc (style.md "Memory").
//
// Usage: take a mark at the start of a step (or a layer), allocate freely, reset to the mark when
// the step's buffers are dead. Pointers past a mark are invalid after resetting to it.
//
// Out of space: allocate returns nullptr and the arena never grows. The first failure is also
// remembered (sticky) with its sizes, so a forward pass can check once per step with status()
// instead of after each allocation, and report how large the arena should have been. The arena's
// size comes from the model config at start-up, so running out is a sizing bug, not bad input.
//
// Not thread-safe: one arena per thread, or allocate before a parallel_for and hand out slices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/memory.h"
#include "core/status.h"

namespace frugal {

class Arena {
 public:
  static constexpr uint64_t kAlignment = kCacheLineSize;  // every allocation starts on a line

  // A position in the arena to reset to.
  struct Mark {
    uint64_t offset = 0;
  };

  Arena() = default;  // zero capacity: every non-empty allocation fails
  Arena(Arena&& other) noexcept;
  Arena& operator=(Arena&& other) noexcept;

  // `capacity_bytes` from one AlignedBuffer (huge pages when large), charged to `stats`.
  static Result<Arena> create(uint64_t capacity_bytes, MemoryStats* stats,
                              const AllocOptions& options = {});

  // Room for n objects of T, 64-byte aligned and uninitialised, or nullptr when it does not fit
  // (see above). n == 0 always succeeds with a non-null aligned pointer that must not be
  // dereferenced. T must be trivially destructible: the arena never runs destructors.
  template <typename T>
  T* allocate(uint64_t n) {
    static_assert(std::is_trivially_destructible_v<T>, "the arena never runs destructors");
    static_assert(alignof(T) <= kAlignment);
    if (n > UINT64_MAX / sizeof(T)) {
      note_failure(UINT64_MAX);
      return nullptr;
    }
    return static_cast<T*>(allocate_bytes(n * sizeof(T)));
  }
  void* allocate_bytes(uint64_t bytes);

  Mark mark() const { return Mark{used_}; }
  // Frees everything allocated after `m`. Resetting to a mark past the current position is a bug
  // (checked). The sticky failure is kept; clear_failure() drops it.
  void reset(Mark m);
  void reset() { reset(Mark{}); }

  uint64_t capacity() const { return buffer_.size(); }
  uint64_t used() const { return used_; }
  uint64_t high_water() const { return high_water_; }  // most bytes ever in use at once

  // ok, or resource_exhausted naming the first failed request, the bytes in use then and the
  // capacity.
  bool failed() const { return failed_request_ != 0; }
  Status status() const;
  void clear_failure() { failed_request_ = failed_used_ = 0; }

 private:
  void note_failure(uint64_t bytes);

  AlignedBuffer buffer_;
  uint64_t used_ = 0;
  uint64_t high_water_ = 0;
  uint64_t failed_request_ = 0;  // bytes of the first failed request; 0: none
  uint64_t failed_used_ = 0;     // used() when it failed
};

// Resets the arena to where it was when the scope began.
class ArenaScope {
 public:
  explicit ArenaScope(Arena& arena) : arena_(arena), mark_(arena.mark()) {}
  ~ArenaScope() { arena_.reset(mark_); }
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;

 private:
  Arena& arena_;
  Arena::Mark mark_;
};

}  // namespace frugal
