// write_safetensors / write_sharded / write_sharded_streamed: files any safetensors reader
// accepts (no gaps between tensors, header padded with spaces, see safetensors.h), each written
// atomically. All three are one streaming writer: the in-memory ones produce a tensor by copying
// the bytes they were given.
#include "format/safetensors_writer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/atomic_file_writer.h"
#include "core/file_write.h"
#include "format/safetensors.h"
#include "format/text.h"

namespace frugal::format {
namespace {

using ordered_json = nlohmann::ordered_json;

// Checks one tensor's name, dtype and shape; returns its size in bytes.
Result<uint64_t> checked_bytes(const std::string& name, DType dtype,
                               const std::vector<int64_t>& shape) {
  const std::string who = "tensor " + quote(name) + ": ";
  if (name.empty()) return invalid_argument("a tensor to write has an empty name");
  if (first_invalid_utf8(name) != std::string_view::npos) {
    return invalid_argument(who + "name is not valid UTF-8");
  }
  if (name == "__metadata__") return invalid_argument(who + "name is reserved for metadata");
  if (!dtype_safetensors_name(dtype)) {
    return invalid_argument(who + "dtype " + std::string(dtype_name(dtype)) +
                            " has no safetensors spelling (store packed FP4 as I8 [out, in/2])");
  }
  if (shape.size() > static_cast<size_t>(kMaxRank)) {
    return invalid_argument(who + "more than " + std::to_string(kMaxRank) + " dimensions");
  }
  uint64_t numel = 1;
  for (const int64_t d : shape) {
    if (d < 0)
      return invalid_argument(who + "shape " + shape_string(shape) + " has a negative dim");
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) {
      return invalid_argument(who + "shape " + shape_string(shape) + " overflows 64 bits");
    }
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_bits(dtype) / 8), &bytes)) {
    return invalid_argument(who + "shape " + shape_string(shape) + " overflows 64 bits of bytes");
  }
  return bytes;
}

// Sizes of all tensors, after checking each and that names are unique.
Result<std::vector<uint64_t>> checked_sizes(std::span<const TensorToStream> tensors) {
  std::vector<uint64_t> sizes;
  sizes.reserve(tensors.size());
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    FRUGAL_ASSIGN_OR_RETURN(const uint64_t n, checked_bytes(t.name, t.dtype, t.shape));
    if (!names.insert(t.name).second) {
      return invalid_argument("tensor " + quote(t.name) + " is given twice");
    }
    sizes.push_back(n);
  }
  return sizes;
}

Status check_metadata(const std::map<std::string, std::string>& metadata) {
  for (const auto& [k, v] : metadata) {
    if (first_invalid_utf8(k) != std::string_view::npos ||
        first_invalid_utf8(v) != std::string_view::npos) {
      return invalid_argument("metadata " + quote(k) + ": key and value must be valid UTF-8");
    }
  }
  return ok_status();
}

std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// The in-memory tensors as streamed ones, after checking that each has exactly its size in bytes.
Result<std::vector<TensorToStream>> to_streams(std::span<const TensorToWrite> tensors) {
  std::vector<TensorToStream> out;
  out.reserve(tensors.size());
  for (const TensorToWrite& t : tensors) {
    FRUGAL_ASSIGN_OR_RETURN(const uint64_t bytes, checked_bytes(t.name, t.dtype, t.shape));
    if (t.data.size() != bytes) {
      return invalid_argument("tensor " + quote(t.name) + ": " +
                              std::string(*dtype_safetensors_name(t.dtype)) + " " +
                              shape_string(t.shape) + " needs " + std::to_string(bytes) +
                              " bytes but " + std::to_string(t.data.size()) + " were given");
    }
    out.push_back({.name = t.name, .dtype = t.dtype, .shape = t.shape});
  }
  return out;
}

TensorProducer copy_from(std::span<const TensorToWrite> tensors) {
  return [tensors](size_t i, TensorSink& sink) { return sink.append(tensors[i].data); };
}

// Puts one tensor's pieces at its place in the shard and counts them.
class ShardSink final : public TensorSink {
 public:
  ShardSink(AtomicFileWriter& file, const TensorToStream& tensor, uint64_t begin, uint64_t size,
            const std::function<void(uint64_t)>& on_written)
      : file_(file), tensor_(tensor), begin_(begin), size_(size), on_written_(on_written) {}

  Status append(std::span<const std::byte> bytes) override {
    if (bytes.size() > size_ - written_) {
      return invalid_argument("tensor " + quote(tensor_.name) +
                              ": the producer gave more than its " + std::to_string(size_) +
                              " bytes");
    }
    FRUGAL_RETURN_IF_ERROR(file_.write_at(begin_ + written_, bytes));
    written_ += bytes.size();
    if (on_written_) on_written_(bytes.size());
    return ok_status();
  }
  Status check_complete() const {
    if (written_ == size_) return ok_status();
    return invalid_argument("tensor " + quote(tensor_.name) + ": the producer gave " +
                            std::to_string(written_) + " of its " + std::to_string(size_) +
                            " bytes");
  }

 private:
  AtomicFileWriter& file_;
  const TensorToStream& tensor_;
  uint64_t begin_, size_, written_ = 0;
  const std::function<void(uint64_t)>& on_written_;
};

// Writes tensors [first, first + sizes.size()) of `tensors` as one file at `path`.
Status write_shard(const std::string& path, std::span<const TensorToStream> tensors, size_t first,
                   std::span<const uint64_t> sizes, const TensorProducer& produce,
                   const std::map<std::string, std::string>& metadata,
                   const std::function<void(uint64_t)>& on_written) {
  const size_t n = sizes.size();
  // Larger elements first (stable), so with no gaps every tensor starts at a multiple of its
  // element size; the buffer itself starts 8-aligned.
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_bits(tensors[first + a].dtype) > dtype_bits(tensors[first + b].dtype);
  });

  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json m = ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::vector<uint64_t> offset(n);  // in the buffer, by position in `sizes`
  uint64_t at = 0;
  for (const size_t i : order) {
    const TensorToStream& t = tensors[first + i];
    offset[i] = at;
    header[t.name] = {{"dtype", std::string(*dtype_safetensors_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {at, at + sizes[i]}}};
    at += sizes[i];
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeaderBytes) {
    return invalid_argument(path + ": header of " + std::to_string(text.size()) +
                            " bytes is over the limit of " + std::to_string(kMaxHeaderBytes));
  }
  std::string len(8, '\0');
  for (int b = 0; b < 8; ++b) len[b] = static_cast<char>((text.size() >> (8 * b)) & 0xff);

  FRUGAL_ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::create(path));
  FRUGAL_RETURN_IF_ERROR(file.write_at(0, as_bytes(len)));
  FRUGAL_RETURN_IF_ERROR(file.write_at(8, as_bytes(text)));
  const uint64_t data_start = 8 + text.size();
  for (size_t i = 0; i < n; ++i) {  // the given order: the producer may depend on it
    ShardSink sink(file, tensors[first + i], data_start + offset[i], sizes[i], on_written);
    FRUGAL_RETURN_IF_ERROR(produce(first + i, sink));
    FRUGAL_RETURN_IF_ERROR(sink.check_complete());
  }
  return file.commit();
}

// [first, last) ranges of `tensors`, filled greedily in order; a unit (a tensor and those chained
// to it by same_shard_as_previous) is never split.
std::vector<std::pair<size_t, size_t>> plan_shards(std::span<const TensorToStream> tensors,
                                                   std::span<const uint64_t> sizes,
                                                   uint64_t max_shard_bytes) {
  std::vector<std::pair<size_t, size_t>> shards;
  uint64_t in_shard = 0;
  for (size_t i = 0; i < tensors.size();) {
    size_t end = i + 1;
    uint64_t unit = sizes[i];
    while (end < tensors.size() && tensors[end].same_shard_as_previous) unit += sizes[end++];
    const bool full =
        in_shard > 0 && (in_shard >= max_shard_bytes || unit > max_shard_bytes - in_shard);
    if (shards.empty() || full) {
      shards.push_back({i, i});
      in_shard = 0;
    }
    shards.back().second = end;
    in_shard += unit;
    i = end;
  }
  return shards;
}

Status write_shards(const std::string& dir, std::span<const TensorToStream> tensors,
                    std::span<const uint64_t> sizes, const TensorProducer& produce,
                    const StreamedShardsOptions& options) {
  const auto shards = plan_shards(tensors, sizes, options.max_shard_bytes);
  if (shards.size() > 99999) {
    return invalid_argument(dir + ": " + std::to_string(shards.size()) +
                            " shards; the model-NNNNN-of-NNNNN naming allows 99999");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return io_error(dir + ": cannot create directory: " + ec.message());

  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const auto [first, last] = shards[s];
    FRUGAL_RETURN_IF_ERROR(write_shard((std::filesystem::path(dir) / name).string(), tensors, first,
                                       sizes.subspan(first, last - first), produce,
                                       options.metadata, options.on_written));
    for (size_t i = first; i < last; ++i) {
      weight_map[tensors[i].name] = name;
      total += sizes[i];
    }
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}},
                                  {"weight_map", std::move(weight_map)}};
  return write_file_atomic((std::filesystem::path(dir) / "model.safetensors.index.json").string(),
                           index.dump(2) + "\n");
}

}  // namespace

Status write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                         const std::map<std::string, std::string>& metadata) {
  FRUGAL_RETURN_IF_ERROR(check_metadata(metadata));
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<TensorToStream> streams, to_streams(tensors));
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<uint64_t> sizes, checked_sizes(streams));
  return write_shard(path, streams, 0, sizes, copy_from(tensors), metadata, {});
}

Status write_sharded(const std::string& dir, std::span<const TensorToWrite> tensors,
                     uint64_t max_shard_bytes, const std::map<std::string, std::string>& metadata) {
  if (max_shard_bytes == 0) return invalid_argument(dir + ": max_shard_bytes must be > 0");
  if (tensors.empty()) return invalid_argument(dir + ": no tensors to write");
  FRUGAL_RETURN_IF_ERROR(check_metadata(metadata));
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<TensorToStream> streams, to_streams(tensors));
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<uint64_t> sizes, checked_sizes(streams));
  return write_shards(dir, streams, sizes, copy_from(tensors),
                      {.max_shard_bytes = max_shard_bytes, .metadata = metadata});
}

Status write_sharded_streamed(const std::string& dir, std::span<const TensorToStream> tensors,
                              const TensorProducer& produce, const StreamedShardsOptions& options) {
  if (options.max_shard_bytes == 0) return invalid_argument(dir + ": max_shard_bytes must be > 0");
  if (tensors.empty()) return invalid_argument(dir + ": no tensors to write");
  FRUGAL_RETURN_IF_ERROR(check_metadata(options.metadata));
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<uint64_t> sizes, checked_sizes(tensors));
  return write_shards(dir, tensors, sizes, produce, options);
}

}  // namespace frugal::format
