#include "kv/v4_entry.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/convert.h"

namespace frugal::kv {
namespace {

// The decoders run for every cached entry an attention or indexer step reads: table lookups of
// the exact conversions (core/convert.h), built once, instead of a call per element.
struct DecodeTables {
  float e4m3[256];
  float e8m0[256];
  float e2m1[16];
  DecodeTables() {
    for (int c = 0; c < 256; ++c) {
      e4m3[c] = e4m3_to_f32(static_cast<uint8_t>(c));
      e8m0[c] = e8m0_to_f32(static_cast<uint8_t>(c));
    }
    for (int c = 0; c < 16; ++c) e2m1[c] = e2m1_to_f32(static_cast<uint8_t>(c));
  }
};
const DecodeTables& tables() {
  static const DecodeTables t;
  return t;
}

constexpr int64_t kFp8Block = 64;  // KV FP8 simulation block (§2.A)
constexpr int64_t kFp4Block = 32;  // indexer FP4 simulation block

void put_bf16(const float* in, int64_t n, std::byte* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t b = f32_to_bf16(in[i]);
    std::memcpy(out + 2 * i, &b, 2);
  }
}
void get_bf16(const std::byte* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t b;
    std::memcpy(&b, in + 2 * i, 2);
    out[i] = bf16_to_f32(b);
  }
}

// The e8m0 scale code of a block: 2^ceil(log2(amax / qmax)); code 0 for an all-zero block.
uint8_t block_scale(const float* x, int64_t n, float qmax) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  return f32_to_e8m0_ceil(amax / qmax);
}

}  // namespace

const char* cache_format_name(CacheFormat f) {
  switch (f) {
    case CacheFormat::kFp8:
      return "fp8";
    case CacheFormat::kBf16:
      return "bf16";
    case CacheFormat::kF32:
      return "f32";
  }
  return "?";
}

EntryCodec::EntryCodec(CacheFormat format, int64_t head_dim, int64_t rope_dim)
    : format_(format), dim_(head_dim), nope_(head_dim - rope_dim) {
  switch (format) {
    case CacheFormat::kF32:
      bytes_ = 4 * dim_;
      break;
    case CacheFormat::kBf16:
      bytes_ = 2 * dim_;
      break;
    case CacheFormat::kFp8:
      bytes_ = (nope_ + 2 * rope_dim + nope_ / kFp8Block + 7) & ~uint64_t{7};
      break;
  }
}

void EntryCodec::encode(const float* in, std::byte* out) const {
  if (format_ == CacheFormat::kF32) {
    std::memcpy(out, in, 4 * dim_);
    return;
  }
  if (format_ == CacheFormat::kBf16) {
    put_bf16(in, dim_, out);
    return;
  }
  std::byte* codes = out;
  std::byte* rope = out + nope_;
  std::byte* scales = rope + 2 * (dim_ - nope_);
  for (int64_t b = 0; b < nope_ / kFp8Block; ++b) {
    const float* x = in + b * kFp8Block;
    const uint8_t sc = block_scale(x, kFp8Block, 448.0f);
    const float s = e8m0_to_f32(sc);
    scales[b] = static_cast<std::byte>(sc);
    for (int64_t i = 0; i < kFp8Block; ++i) {
      codes[b * kFp8Block + i] = static_cast<std::byte>(f32_to_e4m3(x[i] / s));
    }
  }
  put_bf16(in + nope_, dim_ - nope_, rope);
  std::memset(scales + nope_ / kFp8Block, 0,
              bytes_ - (nope_ + 2 * (dim_ - nope_) + nope_ / kFp8Block));
}

void EntryCodec::decode(const std::byte* in, float* out) const {
  if (format_ == CacheFormat::kF32) {
    std::memcpy(out, in, 4 * dim_);
    return;
  }
  if (format_ == CacheFormat::kBf16) {
    get_bf16(in, dim_, out);
    return;
  }
  const std::byte* rope = in + nope_;
  const std::byte* scales = rope + 2 * (dim_ - nope_);
  const DecodeTables& t = tables();
  for (int64_t b = 0; b < nope_ / kFp8Block; ++b) {
    const float s = t.e8m0[static_cast<uint8_t>(scales[b])];
    for (int64_t i = 0; i < kFp8Block; ++i) {
      out[b * kFp8Block + i] = t.e4m3[static_cast<uint8_t>(in[b * kFp8Block + i])] * s;
    }
  }
  get_bf16(rope, dim_ - nope_, out + nope_);
}

IndexKeyCodec::IndexKeyCodec(CacheFormat format, int64_t dim) : format_(format), dim_(dim) {
  switch (format) {
    case CacheFormat::kF32:
      bytes_ = 4 * dim;
      break;
    case CacheFormat::kBf16:
      bytes_ = 2 * dim;
      break;
    case CacheFormat::kFp8:
      bytes_ = dim / 2 + dim / kFp4Block;
      break;
  }
}

void IndexKeyCodec::encode(const float* in, std::byte* out) const {
  if (format_ == CacheFormat::kF32) {
    std::memcpy(out, in, 4 * dim_);
    return;
  }
  if (format_ == CacheFormat::kBf16) {
    put_bf16(in, dim_, out);
    return;
  }
  uint8_t* packed = reinterpret_cast<uint8_t*>(out);
  std::byte* scales = out + dim_ / 2;
  for (int64_t b = 0; b < dim_ / kFp4Block; ++b) {
    const float* x = in + b * kFp4Block;
    const uint8_t sc = block_scale(x, kFp4Block, 6.0f);
    const float s = e8m0_to_f32(sc);
    scales[b] = static_cast<std::byte>(sc);
    for (int64_t i = 0; i < kFp4Block; ++i)
      fp4_set(packed, b * kFp4Block + i, f32_to_e2m1(x[i] / s));
  }
}

void IndexKeyCodec::copy_row(const std::byte* in, int64_t j, int64_t n, std::byte* buf) const {
  if (format_ != CacheFormat::kFp8) {  // f32 / bf16: the entry is the row
    std::memcpy(buf + j * bytes_, in, bytes_);
    return;
  }
  const int64_t codes = dim_ / 2, scales = dim_ / kFp4Block;
  std::memcpy(buf + j * codes, in, codes);
  std::memcpy(buf + n * codes + j * scales, in + codes, scales);
}

quant::WeightView IndexKeyCodec::rows_view(int64_t n, const std::byte* buf) const {
  using quant::WeightFormat;
  switch (format_) {
    case CacheFormat::kF32:
      return {.format = WeightFormat::kF32, .rows = n, .cols = dim_, .data = buf};
    case CacheFormat::kBf16:
      return {.format = WeightFormat::kBF16, .rows = n, .cols = dim_, .data = buf};
    case CacheFormat::kFp8:
      break;
  }
  return {.format = WeightFormat::kMXFP4,
          .rows = n,
          .cols = dim_,
          .data = buf,
          .scales = reinterpret_cast<const uint8_t*>(buf + n * dim_ / 2)};
}

void IndexKeyCodec::decode(const std::byte* in, float* out) const {
  if (format_ == CacheFormat::kF32) {
    std::memcpy(out, in, 4 * dim_);
    return;
  }
  if (format_ == CacheFormat::kBf16) {
    get_bf16(in, dim_, out);
    return;
  }
  const uint8_t* packed = reinterpret_cast<const uint8_t*>(in);
  const std::byte* scales = in + dim_ / 2;
  const DecodeTables& t = tables();
  for (int64_t b = 0; b < dim_ / kFp4Block; ++b) {
    const float s = t.e8m0[static_cast<uint8_t>(scales[b])];
    for (int64_t i = b * kFp4Block; i < (b + 1) * kFp4Block; ++i) {
      out[i] = t.e2m1[fp4_get(packed, i) & 0xf] * s;
    }
  }
}

}  // namespace frugal::kv
