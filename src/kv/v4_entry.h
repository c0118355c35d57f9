// Byte formats of one V4 cache entry (architecture doc §3.1).
//
// Main KV entry (window ring and compressed entries), head_dim = nope + rope values:
//   kF32:  head_dim f32 (4 B each) — exact for every f32 entry.
//   kBf16: head_dim bf16 (1024 B at the official 512 dims), what the reference allocates.
//   kFp8:  nope e4m3 codes, rope bf16, nope/64 e8m0 scales, padded to 8 bytes:
//          448 + 128 + 7 + 1 = 584 B at the official dims (vLLM's layout size).
// Indexer key (index_head_dim values):
//   kF32: 4 B each; kBf16: 2 B each (256 B at 128); kFp8 (the compact run): FP4 e2m1 packed two
//   per byte + one e8m0 scale per 32 = 64 + 4 = 68 B at 128.
//
// All three formats hold a cache-exact entry (model/v4/cache.h) without loss: the FP8/FP4 scales
// are recomputed from the stored values as 2^ceil(log2(amax / 448)) (resp. / 6), which is never
// larger than the simulation's own scale, so every value stays representable (tested).
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/weight_view.h"

namespace frugal::kv {

enum class CacheFormat : uint8_t {
  kFp8,   // 584-B main entries + 68-B FP4 indexer keys (the compact format)
  kBf16,  // bf16 everywhere (the reference layout)
  kF32,   // f32 everywhere (debugging: also keeps RoPE dims unrounded)
};

const char* cache_format_name(CacheFormat f);  // "fp8", "bf16", "f32"

class EntryCodec {
 public:
  EntryCodec() = default;
  EntryCodec(CacheFormat format, int64_t head_dim, int64_t rope_dim);
  uint64_t bytes() const { return bytes_; }
  void encode(const float* in, std::byte* out) const;  // in[head_dim]
  void decode(const std::byte* in, float* out) const;  // out[head_dim]

 private:
  CacheFormat format_ = CacheFormat::kF32;
  int64_t dim_ = 0;
  int64_t nope_ = 0;
  uint64_t bytes_ = 0;
};

class IndexKeyCodec {
 public:
  IndexKeyCodec() = default;
  IndexKeyCodec(CacheFormat format, int64_t dim);
  uint64_t bytes() const { return bytes_; }
  void encode(const float* in, std::byte* out) const;
  void decode(const std::byte* in, float* out) const;
  // Keys as rows of a weight matrix [n, dim] (f32, bf16 or, for kFp8, MXFP4: codes [n, dim/2]
  // then scales [n, dim/32]) in buf: copy_row puts entry `in` at row j, rows_view describes them.
  void copy_row(const std::byte* in, int64_t j, int64_t n, std::byte* buf) const;
  quant::WeightView rows_view(int64_t n, const std::byte* buf) const;

 private:
  CacheFormat format_ = CacheFormat::kF32;
  int64_t dim_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace frugal::kv
