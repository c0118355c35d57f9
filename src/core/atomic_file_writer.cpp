#include "core/atomic_file_writer.h"

#include "core/file_write.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

namespace frugal {
namespace {

std::string errno_text(int e) { return std::strerror(e); }

// "<pid>-w<n>": unique among the live processes of this machine and the threads of this one (the
// "w" keeps the names apart from write_file_atomic's "<pid>-<n>").
std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  return std::to_string(::getpid()) + "-w" + std::to_string(counter.fetch_add(1));
}

}  // namespace

Result<AtomicFileWriter> AtomicFileWriter::create(const std::string& path) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    std::string tmp = path + ".tmp-" + unique_suffix();
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) return AtomicFileWriter(path, std::move(tmp), fd);
    if (errno != EEXIST) return io_error(tmp + ": cannot create: " + errno_text(errno));
  }
  return io_error(path + ".tmp-*: cannot create a temporary of a unique name (1000 tries)");
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)),
      tmp_(std::exchange(other.tmp_, {})),
      fd_(std::exchange(other.fd_, -1)) {}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& other) noexcept {
  if (this != &other) {
    discard();
    path_ = std::move(other.path_);
    tmp_ = std::exchange(other.tmp_, {});
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

AtomicFileWriter::~AtomicFileWriter() { discard(); }

void AtomicFileWriter::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
}

Status AtomicFileWriter::write_at(uint64_t offset, std::span<const std::byte> bytes) {
  if (fd_ < 0) return internal_error(path_ + ": write after commit");
  const auto* p = reinterpret_cast<const char*>(bytes.data());
  size_t n = bytes.size();
  while (n > 0) {
    const ssize_t w =
        ::pwrite(fd_, p, std::min<size_t>(n, size_t{1} << 30), static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return io_error(tmp_ + ": write failed: " + errno_text(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return ok_status();
}

Status AtomicFileWriter::commit() {
  if (fd_ < 0) return internal_error(path_ + ": committed twice");
  Status st;
  if (::fsync(fd_) != 0) st = io_error(tmp_ + ": fsync failed: " + errno_text(errno));
  if (::close(std::exchange(fd_, -1)) != 0 && st.ok())
    st = io_error(tmp_ + ": close failed: " + errno_text(errno));
  if (st.ok() && std::rename(tmp_.c_str(), path_.c_str()) != 0)
    st = io_error(tmp_ + ": cannot rename to " + path_ + ": " + errno_text(errno));
  if (!st.ok()) {
    discard();
    return st;
  }
  tmp_.clear();
  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  return sync_directory(parent.empty() ? std::string(".") : parent.string());
}

}  // namespace frugal
