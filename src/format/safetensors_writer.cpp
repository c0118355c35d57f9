// write_safetensors / write_sharded: files any safetensors reader accepts (no gaps between
// tensors, header padded with spaces, see safetensors.h), written atomically.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/file_write.h"
#include "format/safetensors.h"
#include "format/text.h"

namespace frugal::format {
namespace {

using ordered_json = nlohmann::ordered_json;

// Checks one tensor against its dtype and shape; returns its size in bytes.
Result<uint64_t> checked_size(const TensorToWrite& t) {
  const std::string who = "tensor " + quote(t.name) + ": ";
  if (t.name.empty()) return invalid_argument("a tensor to write has an empty name");
  if (first_invalid_utf8(t.name) != std::string_view::npos) {
    return invalid_argument(who + "name is not valid UTF-8");
  }
  if (t.name == "__metadata__") return invalid_argument(who + "name is reserved for metadata");
  if (!dtype_safetensors_name(t.dtype)) {
    return invalid_argument(who + "dtype " + std::string(dtype_name(t.dtype)) +
                            " has no safetensors spelling (store packed FP4 as I8 [out, in/2])");
  }
  if (t.shape.size() > static_cast<size_t>(kMaxRank)) {
    return invalid_argument(who + "more than " + std::to_string(kMaxRank) + " dimensions");
  }
  uint64_t numel = 1;
  for (const int64_t d : t.shape) {
    if (d < 0)
      return invalid_argument(who + "shape " + shape_string(t.shape) + " has a negative dim");
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) {
      return invalid_argument(who + "shape " + shape_string(t.shape) + " overflows 64 bits");
    }
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_bits(t.dtype) / 8), &bytes)) {
    return invalid_argument(who + "shape " + shape_string(t.shape) + " overflows 64 bits of bytes");
  }
  if (t.data.size() != bytes) {
    return invalid_argument(who + std::string(*dtype_safetensors_name(t.dtype)) + " " +
                            shape_string(t.shape) + " needs " + std::to_string(bytes) +
                            " bytes but " + std::to_string(t.data.size()) + " were given");
  }
  return bytes;
}

// Sizes of all tensors, after checking each and that names are unique.
Result<std::vector<uint64_t>> checked_sizes(std::span<const TensorToWrite> tensors) {
  std::vector<uint64_t> sizes;
  sizes.reserve(tensors.size());
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    FRUGAL_ASSIGN_OR_RETURN(const uint64_t n, checked_size(t));
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

Status write_checked(const std::string& path, std::span<const TensorToWrite> tensors,
                     std::span<const uint64_t> sizes,
                     const std::map<std::string, std::string>& metadata) {
  // Larger elements first (stable), so with no gaps every tensor starts at a multiple of its
  // element size; the buffer itself starts 8-aligned.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_bits(tensors[a].dtype) > dtype_bits(tensors[b].dtype);
  });

  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json m = ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  uint64_t offset = 0;
  for (const size_t i : order) {
    const TensorToWrite& t = tensors[i];
    header[t.name] = {{"dtype", std::string(*dtype_safetensors_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + sizes[i]}}};
    offset += sizes[i];
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeaderBytes) {
    return invalid_argument(path + ": header of " + std::to_string(text.size()) +
                            " bytes is over the limit of " + std::to_string(kMaxHeaderBytes));
  }
  std::string len(8, '\0');
  for (int b = 0; b < 8; ++b) len[b] = static_cast<char>((text.size() >> (8 * b)) & 0xff);

  std::vector<std::span<const std::byte>> parts = {as_bytes(len), as_bytes(text)};
  for (const size_t i : order) parts.push_back(tensors[i].data);
  return write_file_atomic(path, parts);
}

}  // namespace

Status write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                         const std::map<std::string, std::string>& metadata) {
  FRUGAL_RETURN_IF_ERROR(check_metadata(metadata));
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<uint64_t> sizes, checked_sizes(tensors));
  return write_checked(path, tensors, sizes, metadata);
}

Status write_sharded(const std::string& dir, std::span<const TensorToWrite> tensors,
                     uint64_t max_shard_bytes, const std::map<std::string, std::string>& metadata) {
  if (max_shard_bytes == 0) return invalid_argument(dir + ": max_shard_bytes must be > 0");
  if (tensors.empty()) return invalid_argument(dir + ": no tensors to write");
  FRUGAL_RETURN_IF_ERROR(check_metadata(metadata));
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<uint64_t> sizes, checked_sizes(tensors));

  // Fill shards greedily in the given order: [first, last) ranges of `tensors`.
  std::vector<std::pair<size_t, size_t>> shards;
  uint64_t in_shard = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const bool full =
        in_shard > 0 && (in_shard >= max_shard_bytes || sizes[i] > max_shard_bytes - in_shard);
    if (shards.empty() || full) {
      shards.push_back({i, i});
      in_shard = 0;
    }
    shards.back().second = i + 1;
    in_shard += sizes[i];
    total += sizes[i];
  }
  if (shards.size() > 99999) {
    return invalid_argument(dir + ": " + std::to_string(shards.size()) +
                            " shards; the model-NNNNN-of-NNNNN naming allows 99999");
  }

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return io_error(dir + ": cannot create directory: " + ec.message());

  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const auto [first, last] = shards[s];
    FRUGAL_RETURN_IF_ERROR(write_checked((std::filesystem::path(dir) / name).string(),
                                         tensors.subspan(first, last - first),
                                         std::span(sizes).subspan(first, last - first), metadata));
    for (size_t i = first; i < last; ++i) weight_map[tensors[i].name] = name;
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}},
                                  {"weight_map", std::move(weight_map)}};
  const std::string text = index.dump(2) + "\n";
  const std::span<const std::byte> parts[] = {as_bytes(text)};
  return write_file_atomic((std::filesystem::path(dir) / "model.safetensors.index.json").string(),
                           parts);
}

}  // namespace frugal::format
