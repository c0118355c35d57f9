// SafetensorsFile: maps a file and hands it to parse_safetensors (safetensors_parse.cpp).
#include "format/safetensors.h"

#include <algorithm>

#include "core/log.h"

namespace frugal::format {

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  FRUGAL_ASSIGN_OR_RETURN(MmapFile map, MmapFile::open(path));
  FRUGAL_ASSIGN_OR_RETURN(ParsedHeader parsed, parse_safetensors(map.bytes(), path));
  if (parsed.gap_bytes > 0) {
    FRUGAL_LOG_WARN("%s: %llu bytes of the data buffer belong to no tensor", path.c_str(),
                    static_cast<unsigned long long>(parsed.gap_bytes));
  }
  SafetensorsFile f;
  f.path_ = std::make_unique<std::string>(path);
  f.map_ = std::move(map);  // moving the map keeps its address: the views stay valid
  f.tensors_ = std::move(parsed.tensors);
  f.metadata_ = std::move(parsed.metadata);
  for (auto& t : f.tensors_) t.file = f.path_.get();
  return f;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = std::lower_bound(
      tensors_.begin(), tensors_.end(), name,
      [](const TensorInfo& t, std::string_view n) { return std::string_view(t.name) < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

}  // namespace frugal::format
