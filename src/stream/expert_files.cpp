#include "stream/expert_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace frugal::stream {
namespace {

uint64_t align_down(uint64_t v) { return v & ~(kDirectIoAlign - 1); }
uint64_t align_up(uint64_t v) { return (v + kDirectIoAlign - 1) & ~(kDirectIoAlign - 1); }

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

std::string errno_text(int err) { return std::strerror(err); }

// Some file systems accept O_DIRECT at open and refuse the reads (EINVAL): try one aligned page.
bool direct_read_works(int fd) {
  void* page = std::aligned_alloc(kDirectIoAlign, kDirectIoAlign);
  if (page == nullptr) return false;
  const ssize_t k = ::pread(fd, page, kDirectIoAlign, 0);
  const bool ok = k >= 0 || errno != EINVAL;
  std::free(page);
  return ok;
}

// The tensors of an expert in slot order: w1, w1 scale, w2, w2 scale, w3, w3 scale (absent
// scales skipped).
struct Piece {
  const format::TensorInfo* t;
  uint64_t* place;
};

}  // namespace

ExpertFiles::~ExpertFiles() {
  for (File& f : files_) {
    if (f.fd >= 0) ::close(f.fd);
  }
}

Result<std::unique_ptr<ExpertFiles>> ExpertFiles::open(const format::Checkpoint& checkpoint,
                                                       bool direct) {
  std::unique_ptr<ExpertFiles> out(new ExpertFiles());
  out->direct_ = direct;
  for (const auto& sf : checkpoint.files()) {
    File f;
    f.path = sf->path();
    if (direct) f.fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (f.fd >= 0 && !direct_read_works(f.fd)) {  // opened, but the file system refuses reads
      ::close(f.fd);
      f.fd = -1;
      errno = EINVAL;
    }
    if (f.fd >= 0) {
      f.direct = true;
    } else {
      if (direct && errno != EINVAL) {
        const int err = errno;
        return io_error(f.path + ": cannot open for expert reads: " + errno_text(err));
      }
      f.fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);  // no O_DIRECT here: buffered
      if (f.fd < 0) {
        const int err = errno;
        return io_error(f.path + ": cannot open for expert reads: " + errno_text(err));
      }
      out->direct_ = false;
    }
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) {
      const int err = errno;
      ::close(f.fd);
      return io_error(f.path + ": cannot stat: " + errno_text(err));
    }
    f.size = static_cast<uint64_t>(st.st_size);
    f.mtime_ns = mtime_ns(st);
    f.inode = static_cast<uint64_t>(st.st_ino);
    out->by_path_[&sf->path()] = static_cast<int32_t>(out->files_.size());
    out->files_.push_back(std::move(f));
  }
  return out;
}

Result<int32_t> ExpertFiles::index_of(const format::TensorInfo* t) const {
  auto it = by_path_.find(t->file);
  if (it == by_path_.end()) {
    return internal_error("tensor '" + t->name + "' is not in a file of the opened checkpoint");
  }
  return it->second;
}

Result<ExpertPlan> ExpertFiles::plan(const v4::ExpertLocation& loc) const {
  ExpertPlan p;
  Piece pieces[6];
  int n = 0;
  for (auto [ref, place] : {std::pair{&loc.w1, &p.w1}, {&loc.w2, &p.w2}, {&loc.w3, &p.w3}}) {
    pieces[n++] = {ref->weight, &place->weight};
    if (ref->scale != nullptr) pieces[n++] = {ref->scale, &place->scale};
  }
  // One range when every tensor is in one file and the covering range is no longer than the
  // separate ones together (tensors written side by side, as the official files and synth do).
  bool one_file = true;
  uint64_t lo = UINT64_MAX, hi = 0, separate = 0;
  for (int i = 0; i < n; ++i) {
    one_file = one_file && pieces[i].t->file == pieces[0].t->file;
    lo = std::min(lo, pieces[i].t->offset);
    hi = std::max(hi, pieces[i].t->offset + pieces[i].t->size);
    separate += align_up(pieces[i].t->offset + pieces[i].t->size) - align_down(pieces[i].t->offset);
    p.data_bytes += pieces[i].t->size;
  }
  if (one_file && align_up(hi) - align_down(lo) <= separate) {
    FRUGAL_ASSIGN_OR_RETURN(const int32_t file, index_of(pieces[0].t));
    const uint64_t a = align_down(lo);
    p.reads.push_back(
        {.file = file, .offset = a, .length = align_up(hi) - a, .need = hi - a, .slot_offset = 0});
    for (int i = 0; i < n; ++i) *pieces[i].place = pieces[i].t->offset - a;
    p.slot_bytes = align_up(hi) - a;
    return p;
  }
  uint64_t at = 0;
  for (int i = 0; i < n; ++i) {
    const format::TensorInfo* t = pieces[i].t;
    FRUGAL_ASSIGN_OR_RETURN(const int32_t file, index_of(t));
    const uint64_t a = align_down(t->offset);
    const uint64_t len = align_up(t->offset + t->size) - a;
    p.reads.push_back({.file = file,
                       .offset = a,
                       .length = len,
                       .need = t->offset + t->size - a,
                       .slot_offset = at});
    *pieces[i].place = at + (t->offset - a);
    at += len;
  }
  p.slot_bytes = at;
  return p;
}

Status ExpertFiles::check_unchanged(const File& f) const {
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) {
    const int err = errno;
    return io_error(f.path + ": cannot stat: " + errno_text(err));
  }
  struct stat by_path {};
  const bool replaced =
      ::stat(f.path.c_str(), &by_path) != 0 || static_cast<uint64_t>(by_path.st_ino) != f.inode;
  if (static_cast<uint64_t>(st.st_size) != f.size || mtime_ns(st) != f.mtime_ns || replaced) {
    std::string what;
    if (replaced)
      what = "replaced or removed";
    else if (static_cast<uint64_t>(st.st_size) != f.size)
      what = "size " + std::to_string(f.size) + " -> " + std::to_string(st.st_size) + " bytes";
    else
      what = "modified (mtime changed)";
    return io_error(f.path + ": changed on disk since it was loaded (" + what +
                    "); what frugal reads from it on demand (routed experts, embedding rows) "
                    "cannot be trusted: restart frugal to load it again");
  }
  return ok_status();
}

Result<ReadRange> ExpertFiles::range(const format::TensorInfo* t, uint64_t offset,
                                     uint64_t length) const {
  if (offset > t->size || length > t->size - offset) {
    return internal_error("read of bytes [" + std::to_string(offset) + ", " +
                          std::to_string(offset + length) + ") of tensor '" + t->name +
                          "' of " + std::to_string(t->size) + " bytes");
  }
  FRUGAL_ASSIGN_OR_RETURN(const int32_t file, index_of(t));
  const uint64_t lo = t->offset + offset, hi = lo + length, a = align_down(lo);
  return ReadRange{
      .file = file, .offset = a, .length = align_up(hi) - a, .need = hi - a, .slot_offset = 0};
}

Status ExpertFiles::read(const ExpertPlan& plan, std::byte* slot, const std::string& what) const {
  for (const ReadRange& r : plan.reads) FRUGAL_RETURN_IF_ERROR(read(r, slot, what));
  return ok_status();
}

Status ExpertFiles::read(const ReadRange& r, std::byte* dst, const std::string& what) const {
  const File& f = files_[static_cast<size_t>(r.file)];
  FRUGAL_RETURN_IF_ERROR(check_unchanged(f).with_context(what));
  uint64_t got = 0;
  while (got < r.length) {
    const ssize_t k = ::pread(f.fd, dst + r.slot_offset + got, r.length - got,
                              static_cast<off_t>(r.offset + got));
    if (k < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      return io_error(f.path + ": read of " + what + " failed at offset " +
                      std::to_string(r.offset + got) + ": " + errno_text(err));
    }
    if (k == 0) break;  // end of file
    got += static_cast<uint64_t>(k);
  }
  if (got < r.need) {
    return io_error(f.path + ": short read of " + what + ": " + std::to_string(got) + " of " +
                    std::to_string(r.need) + " bytes at offset " + std::to_string(r.offset) +
                    " (the file is " + std::to_string(f.size) + " bytes at load; truncated?)");
  }
  if (!f.direct) {
    ::posix_fadvise(f.fd, static_cast<off_t>(r.offset), static_cast<off_t>(r.length),
                    POSIX_FADV_DONTNEED);
  }
  return ok_status();
}

void ExpertFiles::drop_page_cache() const {
  for (const File& f : files_) ::posix_fadvise(f.fd, 0, 0, POSIX_FADV_DONTNEED);
}

}  // namespace frugal::stream
