// The v4-random fixture: a synthetic checkpoint written by the test itself (model/v4/synth.h,
// config tests/fixtures/v4-random/config.json, seed 1) and the logits a Python reference computed
// for it (tests/fixtures/v4-random/regen.py).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kv/v4_cache.h"
#include "model/v4/config.h"
#include "model/v4/model.h"
#include "model/v4/synth.h"
#include "support/temp_dir.h"

namespace frugal::v4::testing {

inline std::string fixture_dir() {
  return std::string(FRUGAL_SOURCE_DIR) + "/tests/fixtures/v4-random";
}

// Writes the checkpoint once per process, in the process's own temporary folder (ctest runs the
// tests of this binary as parallel processes), and returns its directory.
inline const std::string& random_checkpoint() {
  static const std::string dir = [] {
    const std::string d = frugal::test::process_temp_dir().file("v4-random-seed1");
    auto cfg = load_config(fixture_dir() + "/config.json");
    EXPECT_TRUE(cfg.ok()) << cfg.status().to_string();
    const Status s = write_synth_checkpoint(*cfg, d, {.seed = 1});
    EXPECT_TRUE(s.ok()) << s.to_string();
    return d;
  }();
  return dir;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline std::vector<int32_t> read_ids(const std::string& path) {
  std::ifstream in(path);
  std::vector<int32_t> ids;
  int32_t v;
  while (in >> v) ids.push_back(v);
  return ids;
}

// A little-endian array file of T (the goldens' .f32.bin / .i32.bin).
template <typename T>
std::vector<T> read_array(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<T> out(raw.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), raw.data(), out.size() * sizeof(T));
  return out;
}
inline std::vector<float> read_f32(const std::string& path) { return read_array<float>(path); }

// max |got - ref| relative to max |ref| (got has at least ref's size).
inline double rel_diff(std::span<const float> ref, std::span<const float> got) {
  double d = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    d = std::max(d, static_cast<double>(std::fabs(got[i] - ref[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(ref[i])));
  }
  return d / scale;
}

// The op API at one ISA level (default: FRUGAL_ISA, else the best the machine has), created once.
inline const kernels::Kernels& test_kernels(std::optional<kernels::Isa> isa = std::nullopt) {
  static std::map<int, std::unique_ptr<kernels::Kernels>> made;
  std::unique_ptr<kernels::Kernels>& k = made[isa ? static_cast<int>(*isa) : -1];
  if (k == nullptr) {
    kernels::KernelOptions options;
    options.isa = isa;
    auto r = kernels::Kernels::create(options);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    k = std::make_unique<kernels::Kernels>(std::move(*r));
  }
  return *k;
}

inline std::unique_ptr<Model> load_model(const LoadOptions& lo = {}, int64_t max_chunk = 64,
                                         std::optional<kernels::Isa> isa = std::nullopt) {
  auto m = Model::load(random_checkpoint(), test_kernels(isa), lo,
                       {.max_chunk = max_chunk, .max_seq_len = 1040});
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return m.ok() ? std::move(*m) : nullptr;
}

inline std::unique_ptr<kv::V4SequenceCache> new_cache(const Model& m, kv::CacheFormat f) {
  auto c = kv::V4SequenceCache::create(m.config(), {.format = f});
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return std::move(*c);
}

}  // namespace frugal::v4::testing
