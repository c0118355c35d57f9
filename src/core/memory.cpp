#include "core/memory.h"

#include <sys/mman.h>

#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace frugal {

void MemoryStats::on_alloc(uint64_t bytes, bool huge) {
  const uint64_t now = bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  uint64_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  buffers_.fetch_add(1, std::memory_order_relaxed);
  if (huge) huge_.fetch_add(bytes, std::memory_order_relaxed);
}

void MemoryStats::on_free(uint64_t bytes, bool huge) {
  bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  buffers_.fetch_sub(1, std::memory_order_relaxed);
  if (huge) huge_.fetch_sub(bytes, std::memory_order_relaxed);
}

namespace {

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }  // `to`: power of 2

std::string size_text(uint64_t bytes) {
  std::string s = std::to_string(bytes) + " bytes";
  if (bytes >= (uint64_t{1} << 20)) {
    s += " (" + std::to_string(bytes >> 20) + " MiB)";
  }
  return s;
}

}  // namespace

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      reserved_(std::exchange(other.reserved_, 0)),
      huge_(std::exchange(other.huge_, false)),
      stats_(std::exchange(other.stats_, nullptr)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    reserved_ = std::exchange(other.reserved_, 0);
    huge_ = std::exchange(other.huge_, false);
    stats_ = std::exchange(other.stats_, nullptr);
  }
  return *this;
}

void AlignedBuffer::reset() {
  if (data_ != nullptr) {
    if (huge_) {
      munmap(data_, reserved_);
    } else {
      std::free(data_);
    }
    if (stats_ != nullptr) stats_->on_free(reserved_, huge_);
  }
  data_ = nullptr;
  size_ = 0;
  reserved_ = 0;
  huge_ = false;
  stats_ = nullptr;
}

Result<AlignedBuffer> AlignedBuffer::allocate(uint64_t bytes, MemoryStats* stats,
                                              const AllocOptions& options) {
  if (options.alignment < kCacheLineSize || options.alignment > kHugePageSize ||
      !std::has_single_bit(options.alignment)) {
    return invalid_argument("alignment " + std::to_string(options.alignment) +
                            " must be a power of two in [64, 2 MiB]");
  }
  AlignedBuffer buf;
  if (bytes == 0) return buf;
  if (bytes > kMaxAllocationBytes) {
    return resource_exhausted("cannot allocate " + size_text(bytes) + ": over the " +
                              size_text(kMaxAllocationBytes) + " limit");
  }
  const bool huge = options.huge_pages == HugePages::kAlways ||
                    (options.huge_pages == HugePages::kAuto && bytes >= kHugePageSize);
  if (huge) {
    // Map one extra huge page of slack, then unmap the unaligned head and the tail, leaving a
    // 2 MiB-aligned range the kernel can back with whole huge pages.
    const uint64_t reserved = round_up(bytes, kHugePageSize);
    const uint64_t map_len = reserved + kHugePageSize;
    void* p = mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      return resource_exhausted("cannot allocate " + size_text(bytes) +
                                " (2 MiB-aligned anonymous mapping): " + std::strerror(err));
    }
    const uintptr_t base = reinterpret_cast<uintptr_t>(p);
    const uintptr_t aligned = round_up(base, kHugePageSize);
    if (aligned > base) munmap(p, aligned - base);
    const uintptr_t end = aligned + reserved;
    if (base + map_len > end) munmap(reinterpret_cast<void*>(end), base + map_len - end);
      // Advice only: without transparent huge pages in the kernel this fails and we keep 4 KiB
      // pages. The buffer still counts as mapped (huge_ decides how it is freed).
#ifdef MADV_HUGEPAGE
    madvise(reinterpret_cast<void*>(aligned), reserved, MADV_HUGEPAGE);
#endif
    buf.data_ = reinterpret_cast<std::byte*>(aligned);
    buf.reserved_ = reserved;
    buf.huge_ = true;
  } else {
    // aligned_alloc wants the size to be a multiple of the alignment.
    const uint64_t reserved = round_up(bytes, options.alignment);
    void* p = std::aligned_alloc(options.alignment, reserved);
    if (p == nullptr) {
      return resource_exhausted("cannot allocate " + size_text(bytes) + " aligned to " +
                                std::to_string(options.alignment));
    }
    buf.data_ = static_cast<std::byte*>(p);
    buf.reserved_ = reserved;
  }
  buf.size_ = bytes;
  buf.stats_ = stats;
  if (stats != nullptr) stats->on_alloc(buf.reserved_, buf.huge_);
  return buf;
}

}  // namespace frugal
