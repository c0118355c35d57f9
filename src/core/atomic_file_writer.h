// A file too large to hold in memory, replaced as write_file_atomic replaces a small one
// (core/file_write.h): its bytes go, in pieces and at any offsets, to a private temporary of a
// unique name beside the target (O_EXCL), and commit() fsyncs it, renames it over the target and
// fsyncs the directory. A writer destroyed uncommitted removes its temporary; the target is then
// untouched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/status.h"

namespace frugal {

class AtomicFileWriter {
 public:
  static Result<AtomicFileWriter> create(const std::string& path);

  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  // Writes `bytes` at `offset` of the temporary (pwrite; holes read as zeros).
  Status write_at(uint64_t offset, std::span<const std::byte> bytes);
  // fsync, close, rename over the target, fsync its directory. Errors name the path and the
  // call; on error the temporary is removed.
  Status commit();

  const std::string& path() const { return path_; }

 private:
  AtomicFileWriter(std::string path, std::string tmp, int fd)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd) {}
  void discard();

  std::string path_;
  std::string tmp_;  // empty once committed, discarded or moved from
  int fd_ = -1;
};

}  // namespace frugal
