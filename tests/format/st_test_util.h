// Helpers for format tests: raw safetensors bytes built by hand (so corrupt files can be made on
// purpose) and a temporary directory per test.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "support/temp_dir.h"

namespace frugal::format::testing {

// 8-byte little-endian `declared_len`, then `rest` (header text and buffer) verbatim.
inline std::string with_length(uint64_t declared_len, std::string_view rest) {
  std::string out(8, '\0');
  for (int b = 0; b < 8; ++b) out[b] = static_cast<char>((declared_len >> (8 * b)) & 0xff);
  out.append(rest);
  return out;
}

// A safetensors file: the correct length of `header`, the header, then `buffer`.
inline std::string st_file(std::string_view header, std::string_view buffer = {}) {
  std::string rest(header);
  rest.append(buffer);
  return with_length(header.size(), rest);
}

// One header entry: "name":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}.
inline std::string entry(std::string_view name, std::string_view dtype, std::string_view shape,
                         uint64_t begin, uint64_t end) {
  std::string out = "\"";
  out.append(name).append("\":{\"dtype\":\"").append(dtype).append("\",\"shape\":");
  out.append(shape).append(",\"data_offsets\":[").append(std::to_string(begin)).append(",");
  out.append(std::to_string(end)).append("]}");
  return out;
}

// {e1,e2,...}
inline std::string header_of(std::initializer_list<std::string> entries) {
  std::string out = "{";
  for (const auto& e : entries) {
    if (out.size() > 1) out += ',';
    out += e;
  }
  return out + "}";
}

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A fresh directory per test, removed with everything in it at the end.
class TempDir : public frugal::test::ScopedTempDir {
 public:
  TempDir() : ScopedTempDir("format") {}
};

// The entries of `dir` (to check a writer left no temporary file).
inline std::vector<std::string> entries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

// Asserts `st` is an error of `code` whose message holds every one of `parts`.
inline void expect_error(const Status& st, StatusCode code,
                         std::initializer_list<std::string_view> parts) {
  ASSERT_FALSE(st.ok()) << "expected an error";
  EXPECT_EQ(st.code(), code) << st.to_string();
  for (const auto part : parts) {
    EXPECT_NE(st.message().find(part), std::string::npos)
        << "message lacks \"" << part << "\": " << st.to_string();
  }
}

}  // namespace frugal::format::testing
