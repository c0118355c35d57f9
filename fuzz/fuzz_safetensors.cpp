// libFuzzer target for the safetensors header parser and the sharded-checkpoint index parser:
// the input is taken both as a whole .safetensors file and as an index JSON. Every view the
// parser hands out is read in full (so ASan flags any byte outside the input) and the promises
// of ParsedHeader are re-checked; a broken promise traps.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "format/safetensors.h"

namespace {

void require(bool cond) {
  if (!cond) __builtin_trap();
}

void check_header(std::span<const std::byte> file) {
  auto parsed = frugal::format::parse_safetensors(file, "fuzz.safetensors");
  if (!parsed.ok()) {
    require(!parsed.status().message().empty());
    return;
  }
  const auto& h = *parsed;
  require(h.data_start == 8 + h.header_bytes && h.data_start <= file.size());
  uint64_t covered = 0;
  unsigned sum = 0;
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const auto& t = h.tensors[i];
    require(i == 0 || h.tensors[i - 1].name < t.name);  // sorted and unique
    require(!t.name.empty());
    require(t.data.size() == t.size && t.offset >= h.data_start);
    require(t.data.data() == file.data() + t.offset);
    require(frugal::dtype_bytes(t.dtype, t.numel()) == t.size);
    for (const std::byte b : t.data) sum += static_cast<unsigned>(b);  // ASan: in bounds
    covered += t.size;
  }
  require(covered + h.gap_bytes == file.size() - h.data_start);  // so no two tensors overlap
  volatile unsigned sink = sum;
  (void)sink;
}

void check_index(std::string_view text) {
  auto index = frugal::format::parse_safetensors_index(text, "fuzz.index.json");
  if (!index.ok()) return;
  require(!index->weight_map.empty());
  for (const auto& [tensor, shard] : index->weight_map) {
    require(!tensor.empty() && !shard.empty());
    require(shard.find('/') == std::string::npos && shard != "..");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  check_header(std::span<const std::byte>(bytes, size));
  check_index(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
