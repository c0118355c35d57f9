// Non-owning tensor views: a data pointer, a DType, a shape of up to kMaxDims dims and strides in
// elements, all stored inline (no heap), so views are cheap to copy and to make in a forward pass.
//
// Shapes are outermost first, PyTorch style: a Linear weight is [out, in] with strides [in, 1].
// Strides are >= 0 (0 broadcasts a dim); a view never owns or frees its data. Weights are views
// into mapped files (ConstTensorView), activations views into the arena (TensorView).
//
// Sub-byte types (kFP4E2M1, two elements per byte, low nibble first) are addressed by element but
// stored by byte, so a view must be contiguous along its last dim: the last stride is 1 and every
// other stride is even, which keeps each row starting on a byte boundary. Slicing the last dim
// must start at an even element. Layouts that break this are rejected with an error.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "core/dtype.h"
#include "core/status.h"

namespace frugal {

inline constexpr int kMaxDims = 6;

// Shape and strides of a view, without the pointer. Only make_layout builds valid ones.
struct TensorLayout {
  DType dtype = DType::kF32;
  int rank = 0;
  std::array<int64_t, kMaxDims> shape{};
  std::array<int64_t, kMaxDims> strides{};  // in elements
};

// Validates and builds a layout. Empty `strides` means contiguous (row-major). Errors: rank over
// kMaxDims, negative sizes or strides, a strides count that differs from the shape's, element
// counts or offsets past 2^62, and sub-byte layouts that are not contiguous along the last dim.
Result<TensorLayout> make_layout(DType dtype, std::span<const int64_t> shape,
                                 std::span<const int64_t> strides = {});
int64_t layout_numel(const TensorLayout& l);
bool layout_is_contiguous(const TensorLayout& l);
// "bf16[4, 128]" (plus the strides when not contiguous), for error messages.
std::string layout_to_string(const TensorLayout& l);

// The layout of a view and the byte offset of its first element from the parent's first element.
struct SubLayout {
  TensorLayout layout;
  uint64_t byte_offset = 0;
};
Result<TensorLayout> layout_reshape(const TensorLayout& l, std::span<const int64_t> shape);
Result<SubLayout> layout_slice(const TensorLayout& l, int dim, int64_t begin, int64_t end);
Result<SubLayout> layout_select(const TensorLayout& l, int dim, int64_t index);

// Whether elements of `dtype` may be read as T: float for f32; uint16_t for bf16/f16 (raw bits);
// uint8_t for the FP8 codes, u8, and packed FP4 bytes; int8_t, int32_t, int64_t for the integers;
// std::byte for anything.
template <typename T>
constexpr bool storage_type_matches(DType t) {
  using U = std::remove_const_t<T>;
  if constexpr (std::is_same_v<U, std::byte>) return true;
  if constexpr (std::is_same_v<U, float>) return t == DType::kF32;
  if constexpr (std::is_same_v<U, uint16_t>) return t == DType::kBF16 || t == DType::kF16;
  if constexpr (std::is_same_v<U, uint8_t>) {
    return t == DType::kF8E4M3 || t == DType::kF8E8M0 || t == DType::kU8 || t == DType::kFP4E2M1;
  }
  if constexpr (std::is_same_v<U, int8_t>) return t == DType::kI8;
  if constexpr (std::is_same_v<U, int32_t>) return t == DType::kI32;
  if constexpr (std::is_same_v<U, int64_t>) return t == DType::kI64;
  return false;
}

// Byte is std::byte (writable view) or const std::byte (read-only view).
template <typename Byte>
class BasicTensorView {
  static_assert(std::is_same_v<std::remove_const_t<Byte>, std::byte>);
  template <typename T>
  using Elem = std::conditional_t<std::is_const_v<Byte>, const T, T>;

 public:
  BasicTensorView() = default;
  BasicTensorView(Byte* data, const TensorLayout& layout) : data_(data), layout_(layout) {}
  // A writable view converts to a read-only one.
  template <typename B = Byte, typename = std::enable_if_t<std::is_const_v<B>>>
  BasicTensorView(const BasicTensorView<std::byte>& o)  // NOLINT(google-explicit-constructor)
      : data_(o.data()), layout_(o.layout()) {}

  // Row-major contiguous view of `shape` at `data`.
  static Result<BasicTensorView> contiguous(Byte* data, DType dtype,
                                            std::span<const int64_t> shape) {
    FRUGAL_ASSIGN_OR_RETURN(TensorLayout l, make_layout(dtype, shape));
    return BasicTensorView(data, l);
  }
  static Result<BasicTensorView> contiguous(Byte* data, DType dtype,
                                            std::initializer_list<int64_t> shape) {
    return contiguous(data, dtype, std::span<const int64_t>(shape.begin(), shape.size()));
  }
  static Result<BasicTensorView> strided(Byte* data, DType dtype, std::span<const int64_t> shape,
                                         std::span<const int64_t> strides) {
    FRUGAL_ASSIGN_OR_RETURN(TensorLayout l, make_layout(dtype, shape, strides));
    return BasicTensorView(data, l);
  }

  Byte* data() const { return data_; }
  const TensorLayout& layout() const { return layout_; }
  DType dtype() const { return layout_.dtype; }
  int rank() const { return layout_.rank; }
  std::span<const int64_t> shape() const {
    return {layout_.shape.data(), static_cast<size_t>(layout_.rank)};
  }
  std::span<const int64_t> strides() const {
    return {layout_.strides.data(), static_cast<size_t>(layout_.rank)};
  }
  // dim(-1) is the last dim.
  int64_t dim(int i) const { return layout_.shape[axis(i)]; }
  int64_t stride(int i) const { return layout_.strides[axis(i)]; }
  int64_t numel() const { return layout_numel(layout_); }
  // Bytes of the elements themselves (what a contiguous copy takes); for a contiguous view, the
  // bytes it spans.
  uint64_t bytes() const { return dtype_bytes(layout_.dtype, static_cast<uint64_t>(numel())); }
  bool is_contiguous() const { return layout_is_contiguous(layout_); }
  std::string to_string() const { return layout_to_string(layout_); }

  // The data as T (see storage_type_matches); a mismatch is a bug in the caller.
  template <typename T>
  Elem<T>* data_as() const {
    FRUGAL_CHECK_MSG(storage_type_matches<T>(layout_.dtype), "data_as<T>: T does not match dtype");
    return reinterpret_cast<Elem<T>*>(data_);
  }

  // Element offset (in elements, from data()) of the element at `idx`, one index per dim,
  // bounds-checked. For packed FP4 read it with fp4_get(data_as<uint8_t>(), offset).
  template <typename... I>
  int64_t offset_of(I... idx) const {
    FRUGAL_CHECK_MSG(sizeof...(I) == static_cast<size_t>(layout_.rank), "index count != rank");
    const int64_t ix[] = {0, static_cast<int64_t>(idx)...};
    int64_t off = 0;
    for (int d = 0; d < layout_.rank; ++d) {
      FRUGAL_CHECK_MSG(ix[d + 1] >= 0 && ix[d + 1] < layout_.shape[d], "index out of bounds");
      off += ix[d + 1] * layout_.strides[d];
    }
    return off;
  }
  // Element reference, bounds-checked: for tests, loaders and reference code, not inner loops
  // (kernels take data_as<T>() and the strides). Not for sub-byte types.
  template <typename T, typename... I>
  Elem<T>& at(I... idx) const {
    FRUGAL_CHECK_MSG(dtype_bits(layout_.dtype) >= 8, "at<T>() on a sub-byte dtype");
    return data_as<T>()[offset_of(idx...)];
  }

  // Same elements, new shape; only for contiguous views. One entry may be -1 (inferred).
  Result<BasicTensorView> reshape(std::span<const int64_t> shape) const {
    FRUGAL_ASSIGN_OR_RETURN(TensorLayout l, layout_reshape(layout_, shape));
    return BasicTensorView(data_, l);
  }
  Result<BasicTensorView> reshape(std::initializer_list<int64_t> shape) const {
    return reshape(std::span<const int64_t>(shape.begin(), shape.size()));
  }
  // Elements [begin, end) along `dim` (negative dims count from the end); rank is kept.
  Result<BasicTensorView> slice(int dim, int64_t begin, int64_t end) const {
    FRUGAL_ASSIGN_OR_RETURN(SubLayout s, layout_slice(layout_, dim, begin, end));
    return BasicTensorView(data_ + s.byte_offset, s.layout);
  }
  // Index `index` along `dim`; the dim is dropped (rank - 1).
  Result<BasicTensorView> select(int dim, int64_t index) const {
    FRUGAL_ASSIGN_OR_RETURN(SubLayout s, layout_select(layout_, dim, index));
    return BasicTensorView(data_ + s.byte_offset, s.layout);
  }

 private:
  int axis(int i) const {
    const int a = i < 0 ? i + layout_.rank : i;
    FRUGAL_CHECK_MSG(a >= 0 && a < layout_.rank, "dim out of range");
    return a;
  }

  Byte* data_ = nullptr;
  TensorLayout layout_;
};

using TensorView = BasicTensorView<std::byte>;
using ConstTensorView = BasicTensorView<const std::byte>;

}  // namespace frugal
