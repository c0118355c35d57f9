// Owned, aligned memory for everything frugal allocates in bulk: repacked weights, KV caches,
// the activation arena. Each buffer charges its bytes to a MemoryStats the caller passes in (one
// per category, owned by the engine; no globals), so `frugal mem` can report every byte held.
//
// Large buffers (>= kHugePageSize by default) are anonymous mappings aligned to 2 MiB, rounded up
// to whole 2 MiB pages and advised MADV_HUGEPAGE: with transparent huge pages on "madvise" or
// "always" the kernel backs them with 2 MiB pages, which the machine notes measure at +25-35 %
// read bandwidth (docs machine.md). Small buffers come from aligned_alloc with 64-byte (cache
// line) alignment. Contents start unspecified: callers initialise what they read.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/status.h"

namespace frugal {

inline constexpr uint64_t kCacheLineSize = 64;
inline constexpr uint64_t kHugePageSize = uint64_t{2} << 20;
// Requests above this are refused up front (no machine has 256 TiB); it keeps size arithmetic
// far from overflow and never hands an absurd size to the allocator.
inline constexpr uint64_t kMaxAllocationBytes = uint64_t{1} << 48;

// Bytes held by a group of buffers. Thread-safe: buffers may be freed on any thread.
class MemoryStats {
 public:
  MemoryStats() = default;
  MemoryStats(const MemoryStats&) = delete;
  MemoryStats& operator=(const MemoryStats&) = delete;

  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  uint64_t peak_bytes() const { return peak_.load(std::memory_order_relaxed); }
  uint64_t buffers() const { return buffers_.load(std::memory_order_relaxed); }
  // Bytes of buffers advised to use huge pages (a subset of bytes()).
  uint64_t huge_page_bytes() const { return huge_.load(std::memory_order_relaxed); }

  void on_alloc(uint64_t bytes, bool huge);
  void on_free(uint64_t bytes, bool huge);

 private:
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> peak_{0};
  std::atomic<uint64_t> buffers_{0};
  std::atomic<uint64_t> huge_{0};
};

enum class HugePages {
  kAuto,    // huge-page path for buffers of at least kHugePageSize bytes
  kAlways,  // huge-page path whatever the size (rounded up to 2 MiB)
  kNever,   // aligned_alloc, never advised
};

struct AllocOptions {
  uint64_t alignment = kCacheLineSize;  // power of two >= 64 (the huge-page path gives 2 MiB)
  HugePages huge_pages = HugePages::kAuto;
};

// A move-only owner of one aligned allocation.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  ~AlignedBuffer() { reset(); }
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  // `bytes` usable bytes, charged to `stats` (may be null only in tests that do not count) until
  // the buffer is freed; `stats` must outlive the buffer. Zero bytes gives an empty buffer.
  // Errors: invalid_argument for a bad alignment; resource_exhausted naming the size when the
  // system refuses the memory or the size exceeds kMaxAllocationBytes.
  static Result<AlignedBuffer> allocate(uint64_t bytes, MemoryStats* stats,
                                        const AllocOptions& options = {});

  std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }  // the bytes requested
  // Bytes actually held and charged (size rounded up to the page on the huge-page path).
  uint64_t reserved() const { return reserved_; }
  bool huge_pages() const { return huge_; }
  bool empty() const { return size_ == 0; }
  template <typename T>
  T* as() const {
    return reinterpret_cast<T*>(data_);
  }

  // Frees the memory (uncharging it); the buffer becomes empty.
  void reset();

 private:
  std::byte* data_ = nullptr;
  uint64_t size_ = 0;
  uint64_t reserved_ = 0;
  bool huge_ = false;  // mmap'd (unmap to free) rather than aligned_alloc'd
  MemoryStats* stats_ = nullptr;
};

}  // namespace frugal
