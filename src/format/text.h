// Small text helpers shared by the format parsers and writers (internal to src/format).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace frugal::format {

// Offset of the first byte that does not start or continue a well-formed UTF-8 sequence
// (overlong forms, surrogates and code points past U+10FFFF are ill-formed; Unicode 15 §3.9,
// table 3-7), or std::string_view::npos if `s` is valid UTF-8.
size_t first_invalid_utf8(std::string_view s);

// `s` in single quotes for an error message: bytes outside printable ASCII become \xNN and the
// text is cut to about `max_bytes` with "..." so a hostile name cannot flood a log line.
std::string quote(std::string_view s, size_t max_bytes = 160);

// "[1024, 4096]".
std::string shape_string(std::span<const int64_t> shape);

// A shard name from an index must name a file in the index's own directory: non-empty, no '/',
// '\\' or NUL, and not "." or "..".
bool is_plain_file_name(std::string_view name);

}  // namespace frugal::format
