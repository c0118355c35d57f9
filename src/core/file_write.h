// Replacing a file or a whole directory so that neither a reader nor a second writer ever sees a
// mix of old and new bytes.
//
// Every writer works in a private temporary of a unique name beside its target (created with
// O_EXCL, so two processes or threads never share one) and publishes it with one rename, the only
// step the file system makes atomic. Several concurrent writers of one target all succeed; the
// last rename wins whole. On any error the temporary is removed and the target is untouched.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"

namespace frugal {

// Writes `parts` one after another to `<path>.tmp-<unique>` in `path`'s directory (mode 0644 less
// the umask), fsyncs it, renames it over `path` and fsyncs the directory. Errors name the path and
// the call that failed.
Status write_file_atomic(const std::string& path,
                         std::span<const std::span<const std::byte>> parts);
Status write_file_atomic(const std::string& path, std::string_view contents);

// Makes a rename in `dir` durable (fsync of the directory). File systems that cannot sync a
// directory say EINVAL; that is not an error of the write.
Status sync_directory(const std::string& dir);

// Whether a StagedDirectory may replace `target`: absent, or a directory whose every entry
// satisfies `replaceable`; otherwise an invalid_argument error naming the first other entry (or
// saying the target is not a directory). A writer that builds something large calls it before
// building.
Status check_replaceable(const std::string& target,
                         const std::function<bool(std::string_view name)>& replaceable);
// `target` without trailing separators, and its parent directory (".": the current one), which is
// created if missing; errors name the directory.
struct TargetPath {
  std::string target;
  std::string parent;
};
Result<TargetPath> prepare_target(const std::string& target);

// A directory filled under a temporary name beside its target and put in place whole by commit():
// a checkpoint is several files, and a reader must not see shards of one writer with the index of
// another. Until commit() the target is not touched; a StagedDirectory destroyed uncommitted
// removes what was written to it.
class StagedDirectory {
 public:
  // Makes `<parent>/.<name>.tmp-<unique>` (creating `target`'s parent folders if needed).
  static Result<StagedDirectory> create(const std::string& target);

  StagedDirectory(StagedDirectory&& other) noexcept;
  StagedDirectory& operator=(StagedDirectory&& other) noexcept;
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;
  ~StagedDirectory();

  const std::string& path() const { return staging_; }  // write the contents here
  const std::string& target() const { return target_; }

  // Puts the staged contents at target(): one rename when the target is absent or an empty
  // directory. When it holds entries, every one must satisfy `replaceable` (names this writer
  // owns, e.g. an earlier checkpoint's shards) or nothing happens and the error names the first
  // that does not; the two directories are then exchanged in one step (renameat2
  // RENAME_EXCHANGE) and the old contents removed. On a file system without the exchange, the
  // staged files are renamed in one by one (each atomic) and stale replaceable files removed.
  Status commit(const std::function<bool(std::string_view name)>& replaceable);

 private:
  StagedDirectory(std::string target, std::string staging)
      : target_(std::move(target)), staging_(std::move(staging)) {}
  Status move_entries_into_target(const std::function<bool(std::string_view)>& replaceable);
  void remove_staging();

  std::string target_;
  std::string staging_;  // empty once committed or moved from
};

}  // namespace frugal
