// Read-only memory map of a whole file. Weights are views into these maps (zero-copy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/status.h"

namespace frugal {

enum class MmapAdvice {
  kNormal,
  kSequential,  // a single pass (header parsing, checksums)
  kWillNeed,    // prefetch the whole file
  kHugePage,    // ask for transparent huge pages (only effective for page-cache THP / anon copies)
};

// Drops the resident pages wholly inside [p, p + n) of a read-only file mapping from this
// process (MADV_DONTNEED) and, where the kernel allows (MADV_PAGEOUT), from the page cache: they
// leave the RSS and the cache and re-fault from the file if read again. For data that was copied
// elsewhere. Partial pages at either end are kept. Failures are ignored.
void release_mapped_pages(const void* p, uint64_t n);

// Replaces the pages wholly inside [p, p + n) of a file mapping with inaccessible anonymous pages
// (PROT_NONE): this process no longer maps the file's bytes there, and an access faults. For the
// tensors another process of a parallel run holds (docs/PARALLEL.md). Partial pages at either
// end stay mapped. An error names the range when the kernel refuses.
Status unmap_file_pages(const void* p, uint64_t n);

class MmapFile {
 public:
  MmapFile() = default;
  ~MmapFile();
  MmapFile(MmapFile&& other) noexcept;
  MmapFile& operator=(MmapFile&& other) noexcept;
  MmapFile(const MmapFile&) = delete;
  MmapFile& operator=(const MmapFile&) = delete;

  // Maps `path` read-only. An empty file maps to an empty span.
  static Result<MmapFile> open(const std::string& path);

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Advises the kernel about a byte range (rounded out to pages). Failures are ignored: advice.
  void advise(MmapAdvice advice, uint64_t offset = 0, uint64_t length = UINT64_MAX) const;

 private:
  void reset();

  const std::byte* data_ = nullptr;
  uint64_t size_ = 0;
  std::string path_;
};

}  // namespace frugal
