#include "core/file_write.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

namespace frugal {
namespace {

namespace fs = std::filesystem;

std::string errno_text(int e) { return std::strerror(e); }

// "<pid>-<n>": unique among the live processes of this machine and the threads of this one. A
// leftover of a crashed process with a recycled pid is caught by O_EXCL and the next n is tried.
std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  return std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

std::string parent_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

Status sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error(dir + ": cannot open the directory to sync it: " + errno_text(errno));
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL)
    return io_error(dir + ": fsync of the directory failed: " + errno_text(e));
  return ok_status();
}

namespace {

Status write_all(int fd, const void* data, size_t n, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      return io_error(path + ": write failed: " + errno_text(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return ok_status();
}

// Creates `<prefix><unique>` exclusively (a file, or a directory when `dir`); returns its name.
Result<std::string> create_unique(const std::string& prefix, bool dir, int* fd_out) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::string name = prefix + unique_suffix();
    if (dir) {
      if (::mkdir(name.c_str(), 0777) == 0) return name;
    } else {
      const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd >= 0) {
        *fd_out = fd;
        return name;
      }
    }
    if (errno != EEXIST) return io_error(name + ": cannot create: " + errno_text(errno));
  }
  return io_error(prefix + "*: cannot create a temporary of a unique name (1000 tries)");
}

// The names in `dir`, sorted (collected first: the callers rename and remove entries).
Result<std::vector<std::string>> entry_names(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return io_error(dir + ": cannot list the directory: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

Status write_file_atomic(const std::string& path,
                         std::span<const std::span<const std::byte>> parts) {
  int fd = -1;
  FRUGAL_ASSIGN_OR_RETURN(const std::string tmp, create_unique(path + ".tmp-", false, &fd));
  Status st;
  for (const auto& part : parts) {
    st = write_all(fd, part.data(), part.size(), tmp);
    if (!st.ok()) break;
  }
  if (st.ok() && ::fsync(fd) != 0) st = io_error(tmp + ": fsync failed: " + errno_text(errno));
  if (::close(fd) != 0 && st.ok()) st = io_error(tmp + ": close failed: " + errno_text(errno));
  if (st.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    st = io_error(tmp + ": cannot rename to " + path + ": " + errno_text(errno));
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return sync_directory(parent_of(path));
}

Status write_file_atomic(const std::string& path, std::string_view contents) {
  const std::span<const std::byte> parts[] = {
      std::as_bytes(std::span<const char>(contents.data(), contents.size()))};
  return write_file_atomic(path, parts);
}

Status check_replaceable(const std::string& target,
                         const std::function<bool(std::string_view)>& replaceable) {
  std::error_code ec;
  if (!fs::exists(target, ec)) return ok_status();
  if (!fs::is_directory(target, ec))
    return invalid_argument(target + ": exists and is not a directory");
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<std::string> present, entry_names(target));
  for (const std::string& name : present) {
    if (!replaceable(name)) {
      return invalid_argument(target + ": holds '" + name +
                              "', which this writer did not make; nothing was changed there "
                              "(choose a new or empty directory, or remove it)");
    }
  }
  return ok_status();
}

Result<TargetPath> prepare_target(const std::string& target) {
  if (target.empty()) return invalid_argument("an output directory must be named");
  std::string clean = fs::path(target).lexically_normal().string();
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  const std::string name = fs::path(clean).filename().string();
  if (name.empty() || name == "." || name == "..") {
    return invalid_argument(target + ": name the output directory itself, not '" + name + "'");
  }
  TargetPath t{.target = clean, .parent = parent_of(clean)};
  std::error_code ec;
  fs::create_directories(t.parent, ec);
  if (ec) return io_error(t.parent + ": cannot create the directory: " + ec.message());
  return t;
}

Result<StagedDirectory> StagedDirectory::create(const std::string& target) {
  FRUGAL_ASSIGN_OR_RETURN(const TargetPath t, prepare_target(target));
  const std::string name = fs::path(t.target).filename().string();
  FRUGAL_ASSIGN_OR_RETURN(std::string staging,
                          create_unique(t.parent + "/." + name + ".tmp-", true, nullptr));
  return StagedDirectory(t.target, std::move(staging));
}

StagedDirectory::StagedDirectory(StagedDirectory&& other) noexcept
    : target_(std::move(other.target_)), staging_(std::exchange(other.staging_, {})) {}

StagedDirectory& StagedDirectory::operator=(StagedDirectory&& other) noexcept {
  if (this != &other) {
    remove_staging();
    target_ = std::move(other.target_);
    staging_ = std::exchange(other.staging_, {});
  }
  return *this;
}

StagedDirectory::~StagedDirectory() { remove_staging(); }

void StagedDirectory::remove_staging() {
  if (staging_.empty()) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
  staging_.clear();
}

Status StagedDirectory::commit(const std::function<bool(std::string_view)>& replaceable) {
  if (staging_.empty()) return internal_error(target_ + ": staged directory already committed");
  const std::string parent = parent_of(target_);
  // Absent or empty: rename(2) replaces an empty directory in one step.
  if (std::rename(staging_.c_str(), target_.c_str()) == 0) {
    staging_.clear();
    return sync_directory(parent);
  }
  const int e = errno;
  if (e == ENOTDIR) return invalid_argument(target_ + ": exists and is not a directory");
  if (e != ENOTEMPTY && e != EEXIST) {
    return io_error(staging_ + ": cannot rename to " + target_ + ": " + errno_text(e));
  }
  FRUGAL_RETURN_IF_ERROR(check_replaceable(target_, replaceable));
  if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) == 0) {
    remove_staging();  // the old contents, now under the staging name
    return sync_directory(parent);
  }
  if (errno != EINVAL && errno != ENOSYS) {
    return io_error(staging_ + ": cannot exchange with " + target_ + ": " + errno_text(errno));
  }
  return move_entries_into_target(replaceable);
}

// The fallback of commit(): each staged file renamed over its namesake (atomic per file), then
// the target's replaceable files that the new contents do not have removed.
Status StagedDirectory::move_entries_into_target(
    const std::function<bool(std::string_view)>& replaceable) {
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<std::string> staged, entry_names(staging_));
  for (const std::string& name : staged) {
    const std::string from = staging_ + "/" + name, to = target_ + "/" + name;
    if (std::rename(from.c_str(), to.c_str()) != 0) {
      return io_error(from + ": cannot rename to " + to + ": " + errno_text(errno));
    }
  }
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<std::string> present, entry_names(target_));
  std::error_code ec;
  for (const std::string& name : present) {
    if (!std::binary_search(staged.begin(), staged.end(), name) && replaceable(name)) {
      fs::remove_all(target_ + "/" + name, ec);
    }
  }
  remove_staging();
  return sync_directory(target_);
}

}  // namespace frugal
