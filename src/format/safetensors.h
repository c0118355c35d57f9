// safetensors: single files and sharded checkpoints (model.safetensors.index.json), mapped
// read-only; tensors are zero-copy views into the maps.
//
// File layout (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian
// header length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets: [begin, end]}, ...,
// "__metadata__": {str: str}}, then the byte buffer; offsets are relative to the buffer start.
// Every check the format implies is made at open time, so a view handed out is always in bounds.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mmap_file.h"
#include "core/status.h"

namespace frugal::format {

// Largest JSON header we accept. The real V4-Flash shards have headers of well under 1 MiB; a
// bigger one is hostile or broken and must not make us allocate gigabytes.
inline constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;           // as declared in the header
  std::vector<int64_t> shape;          // as declared in the header
  uint64_t offset = 0;                 // absolute byte offset in the file
  uint64_t size = 0;                   // bytes
  std::span<const std::byte> data;     // view into the mapped file
  const std::string* file = nullptr;   // path of the file that holds it (owned by the file)

  uint64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`: header length within the file and kMaxHeaderBytes, UTF-8 JSON,
  // unique non-empty UTF-8 names, known dtypes, non-negative shapes without overflow, offsets in
  // order, inside the buffer, non-overlapping, and size == numel * dtype size.
  static Result<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return *path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  const MmapFile& mapping() const { return map_; }

 private:
  std::unique_ptr<std::string> path_;  // stable address for TensorInfo::file
  MmapFile map_;
  std::vector<TensorInfo> tensors_;    // sorted by name
  std::map<std::string, std::string> metadata_;
};

// A checkpoint directory or file: either one `*.safetensors` file, a directory holding
// `model.safetensors`, or a directory holding `model.safetensors.index.json` whose weight_map
// names the shards. Every shard listed must exist, every tensor must be in the shard the index
// says, and no name may appear in two shards.
class Checkpoint {
 public:
  static Result<Checkpoint> open(const std::string& path);

  const std::string& root() const { return root_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  const TensorInfo* find(const std::string& name) const;
  // All tensors, sorted by name.
  std::vector<const TensorInfo*> tensors() const;
  uint64_t total_bytes() const;

 private:
  std::string root_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> by_name_;
};

// ---- writing (tests, `frugal synth`, exporters) ----

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;  // kFP4E2M1 is not writable: store packed FP4 as kI8 [out, in/2]
  std::vector<int64_t> shape;
  std::span<const std::byte> data;  // exactly numel * dtype size bytes
};

// Writes one file atomically (to `path + ".tmp"`, then rename). Tensors are stored in the order
// given, each 8-byte aligned in the buffer... 
Status write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                         const std::map<std::string, std::string>& metadata = {});

// Writes `dir/model-0000K-of-0000N.safetensors` shards of at most `max_shard_bytes` each (a
// tensor larger than that gets a shard of its own) plus `dir/model.safetensors.index.json`.
Status write_sharded(const std::string& dir, std::span<const TensorToWrite> tensors,
                     uint64_t max_shard_bytes);

}  // namespace frugal::format
