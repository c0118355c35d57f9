#include "core/dtype.h"

namespace frugal {

int dtype_bits(DType t) {
  switch (t) {
    case DType::kF32: return 32;
    case DType::kBF16: return 16;
    case DType::kF16: return 16;
    case DType::kF8E4M3: return 8;
    case DType::kF8E8M0: return 8;
    case DType::kFP4E2M1: return 4;
    case DType::kI8: return 8;
    case DType::kU8: return 8;
    case DType::kI32: return 32;
    case DType::kI64: return 64;
  }
  return 0;
}

uint64_t dtype_bytes(DType t, uint64_t n) {
  const uint64_t bits = static_cast<uint64_t>(dtype_bits(t));
  return (n * bits + 7) / 8;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kF16: return "f16";
    case DType::kF8E4M3: return "f8_e4m3";
    case DType::kF8E8M0: return "f8_e8m0";
    case DType::kFP4E2M1: return "fp4_e2m1";
    case DType::kI8: return "i8";
    case DType::kU8: return "u8";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
  }
  return "?";
}

namespace {
struct StName {
  DType dtype;
  std::string_view name;
};
constexpr StName kStNames[] = {
    {DType::kF32, "F32"},         {DType::kBF16, "BF16"},        {DType::kF16, "F16"},
    {DType::kF8E4M3, "F8_E4M3"}, {DType::kF8E8M0, "F8_E8M0"}, {DType::kI8, "I8"},
    {DType::kU8, "U8"},           {DType::kI32, "I32"},          {DType::kI64, "I64"},
};
}  // namespace

std::optional<std::string_view> dtype_safetensors_name(DType t) {
  for (const auto& e : kStNames)
    if (e.dtype == t) return e.name;
  return std::nullopt;
}

std::optional<DType> dtype_from_safetensors_name(std::string_view name) {
  for (const auto& e : kStNames)
    if (e.name == name) return e.dtype;
  return std::nullopt;
}

}  // namespace frugal
