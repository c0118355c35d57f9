// safetensors: single files and sharded checkpoints (model.safetensors.index.json), mapped
// read-only; tensors are zero-copy views into the maps.
//
// File layout (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian
// header length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets: [begin, end]}, ...,
// "__metadata__": {str: str}}, then the byte buffer; offsets are relative to the buffer start.
// Every check the format implies is made at open time, so a view handed out is always in bounds.
// What is checked, and the limits, are listed in docs/FORMATS.md ("safetensors").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/mmap_file.h"
#include "core/status.h"

namespace frugal::format {

// Largest JSON header we accept (the reference Rust reader uses the same bound). The real
// V4-Flash shards have headers of well under 1 MiB; a bigger one is hostile or broken and must not
// make us allocate gigabytes. The length field is checked against this before anything is read.
inline constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
// Largest model.safetensors.index.json we read (V4-Pro's, with ~150k tensors, is ~12 MB).
inline constexpr uint64_t kMaxIndexBytes = 128ull << 20;
// Most dimensions a tensor may declare (real checkpoints use <= 4).
inline constexpr int kMaxRank = 32;

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;          // as declared in the header
  std::vector<int64_t> shape;         // as declared in the header, outermost first
  uint64_t offset = 0;                // absolute byte offset in the file
  uint64_t size = 0;                  // bytes; == numel * dtype size
  std::span<const std::byte> data;    // view into the mapped file (or the parsed span)
  const std::string* file = nullptr;  // path of the file that holds it (owned by the file)

  uint64_t numel() const;
};

// The validated contents of a safetensors file held in memory.
struct ParsedHeader {
  uint64_t header_bytes = 0;        // N, the JSON header length (including any padding)
  uint64_t data_start = 0;          // 8 + N: where the byte buffer starts in the file
  std::vector<TensorInfo> tensors;  // sorted by name; `data` views the parsed span; file unset
  std::map<std::string, std::string> metadata;  // "__metadata__", empty if absent
  uint64_t gap_bytes = 0;  // buffer bytes no tensor covers (allowed, but worth a warning)
};

// The parser at the heart of SafetensorsFile::open, on bytes already in memory (the fuzzer calls
// it directly). `path` is used only in messages. Never reads outside `file`; the header length is
// checked against the span and kMaxHeaderBytes before anything is allocated.
Result<ParsedHeader> parse_safetensors(std::span<const std::byte> file, std::string_view path);

class SafetensorsFile {
 public:
  // Maps and validates `path`: header length within the file and kMaxHeaderBytes, UTF-8 JSON,
  // unique non-empty names, known dtypes, non-negative shapes without overflow, offsets inside
  // the buffer, non-overlapping, and size == numel * dtype size. Gaps are logged as a warning.
  static Result<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return *path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // sorted by name
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(std::string_view name) const;  // nullptr if absent
  const MmapFile& mapping() const { return map_; }

 private:
  std::unique_ptr<std::string> path_;  // stable address for TensorInfo::file across moves
  MmapFile map_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// model.safetensors.index.json: {"metadata": {"total_size": N, ...}, "weight_map": {tensor:
// shard}}.
struct SafetensorsIndex {
  std::map<std::string, std::string> weight_map;  // tensor name -> shard file name
  std::optional<uint64_t> total_size;             // metadata.total_size when it is an integer
};

// Parses and checks an index held in memory: a JSON object with an object "weight_map" of
// string -> string, no tensor listed twice, every shard a plain file name in the same directory
// (no '/', '\\', "." or ".."). Other top-level keys and the rest of "metadata" are ignored.
Result<SafetensorsIndex> parse_safetensors_index(std::string_view json, std::string_view path);

// A checkpoint: one `*.safetensors` file, a directory holding `model.safetensors`, or a
// directory holding `model.safetensors.index.json` whose weight_map names the shards (the index
// wins if both exist). Each shard is mapped once. Every shard listed must exist, every tensor must
// be in the shard the index says, and a shard may hold no tensor the index does not list.
class Checkpoint {
 public:
  static Result<Checkpoint> open(const std::string& path);

  const std::string& root() const { return root_; }  // the path given to open()
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  const TensorInfo* find(std::string_view name) const;  // nullptr if absent
  // All tensors, sorted by name.
  std::vector<const TensorInfo*> tensors() const;
  size_t size() const { return by_name_.size(); }
  uint64_t total_bytes() const;  // sum of tensor sizes

 private:
  std::string root_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*, std::less<>> by_name_;
};

// ---- writing (tests, synthetic checkpoints, exporters) ----

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;  // kFP4E2M1 is not writable: store packed FP4 as kI8 [out, in/2]
  std::vector<int64_t> shape;
  std::span<const std::byte> data;  // exactly numel * dtype size bytes, little-endian
};

// Writes one file atomically (core/file_write.h: a private temporary beside it, fsync, rename).
// The header is padded with spaces to a multiple of 8 bytes, so the buffer starts 8-aligned.
// Tensors are laid out without gaps (as every safetensors reader requires) in order of decreasing
// element size, keeping the given order within a size, so each tensor starts aligned to its element
// size. Bad input (empty, duplicate or non-UTF-8 names, data size != numel * dtype size, kFP4E2M1)
// is an invalid_argument error naming the tensor; nothing is written then.
Status write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                         const std::map<std::string, std::string>& metadata = {});

// Writes `dir/model-0000K-of-0000N.safetensors` shards (created in `dir`, which is created if
// needed) filled in the given order up to `max_shard_bytes` of tensor data each (a larger tensor
// gets a shard of its own), then `dir/model.safetensors.index.json` with metadata.total_size =
// the sum of tensor sizes. `metadata` goes into every shard's "__metadata__".
Status write_sharded(const std::string& dir, std::span<const TensorToWrite> tensors,
                     uint64_t max_shard_bytes,
                     const std::map<std::string, std::string>& metadata = {});

}  // namespace frugal::format
