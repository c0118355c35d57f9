#include "core/mmap_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace frugal {

MmapFile::~MmapFile() { reset(); }

MmapFile::MmapFile(MmapFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)) {}

MmapFile& MmapFile::operator=(MmapFile&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
  }
  return *this;
}

void MmapFile::reset() {
  if (data_ != nullptr && size_ > 0) {
    munmap(const_cast<std::byte*>(data_), size_);
  }
  data_ = nullptr;
  size_ = 0;
}

Result<MmapFile> MmapFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string m = path + ": cannot open: " + std::strerror(err);
    return err == ENOENT ? not_found(std::move(m)) : io_error(std::move(m));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return io_error(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid_argument(path + ": not a regular file");
  }
  MmapFile f;
  f.path_ = path;
  f.size_ = static_cast<uint64_t>(st.st_size);
  if (f.size_ > 0) {
    void* p = mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      f.size_ = 0;
      return io_error(path + ": cannot mmap " + std::to_string(st.st_size) +
                      " bytes: " + std::strerror(err));
    }
    f.data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return f;
}

namespace {

// The whole pages inside [p, p + n): [*first, *last), empty when last <= first.
void whole_pages(const void* p, uint64_t n, uintptr_t* first, uintptr_t* last) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(p);
  *first = (begin + page - 1) / page * page;
  *last = (begin + n) / page * page;
}

}  // namespace

void release_mapped_pages(const void* p, uint64_t n) {
  uintptr_t first = 0, last = 0;
  whole_pages(p, n, &first, &last);
  if (last <= first) return;
#ifdef MADV_PAGEOUT
  // Reclaims the pages from the page cache too (they are clean and, once this process lets go,
  // mapped by no one): a copy made under a memory budget does not leave a second copy charged to
  // the process's cgroup. Linux >= 5.4; older kernels refuse it and the cache keeps the pages.
  madvise(reinterpret_cast<void*>(first), last - first, MADV_PAGEOUT);
#endif
  madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

Status unmap_file_pages(const void* p, uint64_t n) {
  uintptr_t first = 0, last = 0;
  whole_pages(p, n, &first, &last);
  if (last <= first) return ok_status();
  void* got = mmap(reinterpret_cast<void*>(first), last - first, PROT_NONE,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (got == MAP_FAILED) {
    return io_error("unmapping " + std::to_string(last - first) +
                    " bytes of a file mapping failed: " + std::strerror(errno));
  }
  return ok_status();
}

void MmapFile::advise(MmapAdvice advice, uint64_t offset, uint64_t length) const {
  if (data_ == nullptr || offset >= size_) return;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t end = length > size_ - offset ? size_ : offset + length;
  const uint64_t start = offset / page * page;
  int adv = MADV_NORMAL;
  switch (advice) {
    case MmapAdvice::kNormal:
      adv = MADV_NORMAL;
      break;
    case MmapAdvice::kSequential:
      adv = MADV_SEQUENTIAL;
      break;
    case MmapAdvice::kWillNeed:
      adv = MADV_WILLNEED;
      break;
    case MmapAdvice::kHugePage:
#ifdef MADV_HUGEPAGE
      adv = MADV_HUGEPAGE;
#endif
      break;
  }
  madvise(const_cast<std::byte*>(data_) + start, end - start, adv);
}

}  // namespace frugal
