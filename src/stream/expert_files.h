// The checkpoint's shard files opened for explicit reads of routed experts (and of embedding
// rows, stream/embed_rows.h), and the read plan of every streamed expert: which byte ranges of
// which files fill a slot, and where each of its tensors then lies in the slot.
//
// Reads are O_DIRECT (no page cache: what the budget counts is what frugal holds) in whole
// kDirectIoAlign units into an aligned slot; a tensor starting mid-page keeps its offset within
// the page, so the view's alignment is the file's, as with the mapped views. An expert whose six
// tensors (w1, w2, w3 and their scales) lie close together in one file is read in one range.
// Where the file system refuses O_DIRECT (tmpfs, some network file systems) the same reads go
// through the page cache and each range is dropped from it right after (POSIX_FADV_DONTNEED);
// ExpertFiles::direct() says which, and the engine prints it.
//
// Faults are errors naming the file and tensor: a failed or short read, and a file changed on
// disk since it was opened (size, mtime or inode: checked before every read).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "format/safetensors.h"
#include "model/v4/weights.h"

namespace frugal::stream {

// The unit of an O_DIRECT read: offsets, lengths and buffers are multiples of it.
inline constexpr uint64_t kDirectIoAlign = 4096;

// One read: `length` bytes at file offset `offset` (both multiples of kDirectIoAlign) into the
// slot at `slot_offset`; `need` of them must arrive (the rest may lie past the end of the file).
struct ReadRange {
  int32_t file = 0;  // index into ExpertFiles
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t need = 0;
  uint64_t slot_offset = 0;
};

// How one expert is read and where its six tensors land in the slot.
struct ExpertPlan {
  std::vector<ReadRange> reads;  // 1 (adjacent tensors) to 6
  struct Place {
    uint64_t weight = 0, scale = 0;  // offsets in the slot
  } w1, w2, w3;
  uint64_t slot_bytes = 0;  // bytes of the slot it uses
  uint64_t data_bytes = 0;  // bytes of its tensors
};

class ExpertFiles {
 public:
  // Opens every file of `checkpoint` for reading (O_DIRECT when `direct` and the file system
  // allows it), recording size, mtime and inode.
  static Result<std::unique_ptr<ExpertFiles>> open(const format::Checkpoint& checkpoint,
                                                   bool direct);
  ~ExpertFiles();
  ExpertFiles(const ExpertFiles&) = delete;
  ExpertFiles& operator=(const ExpertFiles&) = delete;

  // Whether every file is read with O_DIRECT (false: buffered reads, dropped after each read).
  bool direct() const { return direct_; }

  // The read plan of a located expert (weights.h ExpertLocation).
  Result<ExpertPlan> plan(const v4::ExpertLocation& loc) const;

  // Performs the reads of `plan` into `slot` (aligned to kDirectIoAlign, plan.slot_bytes long).
  // `what` names the expert in errors ("block 3 expert 17").
  Status read(const ExpertPlan& plan, std::byte* slot, const std::string& what) const;

  // The read of `length` bytes at byte `offset` of tensor `t` (a tensor of the checkpoint):
  // whole kDirectIoAlign units covering them, landing at slot_offset 0, so the bytes wanted start
  // at t->offset + offset - range.offset in the buffer (stream::EmbedRows reads rows so).
  Result<ReadRange> range(const format::TensorInfo* t, uint64_t offset, uint64_t length) const;
  // Performs one read into `dst` (aligned to kDirectIoAlign, r.slot_offset + r.length long).
  Status read(const ReadRange& r, std::byte* dst, const std::string& what) const;

  // Drops the page cache of every file (the resident part was copied out of it at load).
  void drop_page_cache() const;

 private:
  struct File {
    std::string path;
    int fd = -1;
    bool direct = false;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    uint64_t inode = 0;
  };
  ExpertFiles() = default;
  Status check_unchanged(const File& f) const;
  Result<int32_t> index_of(const format::TensorInfo* t) const;

  std::vector<File> files_;
  std::unordered_map<const std::string*, int32_t> by_path_;  // TensorInfo::file -> index
  bool direct_ = true;
};

}  // namespace frugal::stream
