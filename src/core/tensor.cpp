#include "core/tensor.h"

#include <string>

namespace frugal {
namespace {

// Element counts and offsets stay below 2^62 so byte sizes (x8 at most) and sums of offsets
// cannot overflow int64/uint64 anywhere downstream.
constexpr int64_t kMaxElements = int64_t{1} << 62;

std::string dims_string(const int64_t* v, int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(v[i]);
  }
  return s + "]";
}

std::string dims_string(std::span<const int64_t> v) {
  return dims_string(v.data(), static_cast<int>(v.size()));
}

bool is_sub_byte(DType t) { return dtype_bits(t) < 8; }

// Byte offset of element `elem` from element 0. For sub-byte types the caller has checked that
// `elem` is a whole number of bytes.
uint64_t elem_to_bytes(DType t, int64_t elem) {
  return static_cast<uint64_t>(elem) * static_cast<uint64_t>(dtype_bits(t)) / 8;
}

Result<int> resolve_axis(const TensorLayout& l, int dim) {
  const int a = dim < 0 ? dim + l.rank : dim;
  if (a < 0 || a >= l.rank) {
    return out_of_range("dim " + std::to_string(dim) + " out of range for " + layout_to_string(l));
  }
  return a;
}

}  // namespace

Result<TensorLayout> make_layout(DType dtype, std::span<const int64_t> shape,
                                 std::span<const int64_t> strides) {
  if (shape.size() > static_cast<size_t>(kMaxDims)) {
    return invalid_argument("shape " + dims_string(shape) + " has rank " +
                            std::to_string(shape.size()) + "; at most " + std::to_string(kMaxDims) +
                            " dims are supported");
  }
  if (!strides.empty() && strides.size() != shape.size()) {
    return invalid_argument("strides " + dims_string(strides) + " do not match shape " +
                            dims_string(shape));
  }
  TensorLayout l;
  l.dtype = dtype;
  l.rank = static_cast<int>(shape.size());
  int64_t numel = 1;
  for (int i = 0; i < l.rank; ++i) {
    if (shape[i] < 0) return invalid_argument("negative size in shape " + dims_string(shape));
    l.shape[i] = shape[i];
    if (__builtin_mul_overflow(numel, shape[i], &numel) || numel > kMaxElements) {
      return out_of_range("shape " + dims_string(shape) + " has too many elements");
    }
  }
  if (strides.empty()) {
    int64_t s = 1;
    for (int i = l.rank - 1; i >= 0; --i) {
      l.strides[i] = s;
      s *= l.shape[i] > 0 ? l.shape[i] : 1;  // cannot overflow: bounded by numel above
    }
  } else {
    int64_t max_offset = 0;  // offset of the last element; must be addressable
    for (int i = 0; i < l.rank; ++i) {
      if (strides[i] < 0) return invalid_argument("negative stride in " + dims_string(strides));
      l.strides[i] = strides[i];
      int64_t term = 0;
      if (l.shape[i] > 0 &&
          (__builtin_mul_overflow(l.shape[i] - 1, strides[i], &term) ||
           __builtin_add_overflow(max_offset, term, &max_offset) || max_offset > kMaxElements)) {
        return out_of_range("strides " + dims_string(strides) + " of shape " + dims_string(shape) +
                            " address past 2^62 elements");
      }
    }
  }
  if (is_sub_byte(dtype)) {
    // Rows must start on a byte and be packed along the last dim (see the header). Dims of size 1
    // never move the address, so their strides do not matter.
    for (int i = 0; i < l.rank; ++i) {
      if (l.shape[i] <= 1) continue;
      const bool last = i == l.rank - 1;
      if ((last && l.strides[i] != 1) || (!last && l.strides[i] % 2 != 0)) {
        return unsupported(std::string(dtype_name(dtype)) + " view " + layout_to_string(l) +
                           " must be contiguous along its last dim with even outer strides");
      }
    }
  }
  return l;
}

int64_t layout_numel(const TensorLayout& l) {
  int64_t n = 1;
  for (int i = 0; i < l.rank; ++i) n *= l.shape[i];
  return n;
}

bool layout_is_contiguous(const TensorLayout& l) {
  int64_t expected = 1;
  for (int i = l.rank - 1; i >= 0; --i) {
    if (l.shape[i] == 0) return true;  // no elements: any strides describe it
    if (l.shape[i] != 1 && l.strides[i] != expected) return false;
    expected *= l.shape[i];
  }
  return true;
}

std::string layout_to_string(const TensorLayout& l) {
  std::string s = std::string(dtype_name(l.dtype)) + dims_string(l.shape.data(), l.rank);
  if (!layout_is_contiguous(l)) s += " strides " + dims_string(l.strides.data(), l.rank);
  return s;
}

Result<TensorLayout> layout_reshape(const TensorLayout& l, std::span<const int64_t> shape) {
  if (!layout_is_contiguous(l)) {
    return invalid_argument("cannot reshape non-contiguous view " + layout_to_string(l) +
                            " without a copy");
  }
  if (shape.size() > static_cast<size_t>(kMaxDims)) {
    return invalid_argument("reshape to " + dims_string(shape) + ": more than " +
                            std::to_string(kMaxDims) + " dims");
  }
  std::array<int64_t, kMaxDims> dims{};
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dims[i] = shape[i];
    if (shape[i] == -1 && infer < 0) {
      infer = static_cast<int>(i);
    } else if (shape[i] < 0) {
      return invalid_argument("reshape to " + dims_string(shape) +
                              ": sizes must be >= 0 with at most one -1");
    } else if (__builtin_mul_overflow(known, shape[i], &known) || known > kMaxElements) {
      return out_of_range("reshape to " + dims_string(shape) + ": too many elements");
    }
  }
  const int64_t numel = layout_numel(l);
  if (infer >= 0) {
    if (known == 0 || numel % known != 0) {
      return invalid_argument("cannot reshape " + layout_to_string(l) + " to " +
                              dims_string(shape));
    }
    dims[infer] = numel / known;
    known = numel;
  }
  if (known != numel) {
    return invalid_argument("cannot reshape " + layout_to_string(l) + " (" + std::to_string(numel) +
                            " elements) to " + dims_string(shape));
  }
  return make_layout(l.dtype, std::span<const int64_t>(dims.data(), shape.size()));
}

Result<SubLayout> layout_slice(const TensorLayout& l, int dim, int64_t begin, int64_t end) {
  FRUGAL_ASSIGN_OR_RETURN(int a, resolve_axis(l, dim));
  if (begin < 0 || begin > end || end > l.shape[a]) {
    return out_of_range("slice [" + std::to_string(begin) + ", " + std::to_string(end) +
                        ") of dim " + std::to_string(dim) + " of " + layout_to_string(l));
  }
  const int64_t elem = begin * l.strides[a];
  if (is_sub_byte(l.dtype) && elem % 2 != 0) {
    return unsupported("slice of " + layout_to_string(l) + " at element " + std::to_string(begin) +
                       " of the last dim does not start on a byte");
  }
  std::array<int64_t, kMaxDims> shape = l.shape;
  shape[a] = end - begin;
  // Re-validate: a sub-byte slice keeps its strides, which were valid already.
  FRUGAL_ASSIGN_OR_RETURN(TensorLayout out,
                          make_layout(l.dtype, std::span<const int64_t>(shape.data(), l.rank),
                                      std::span<const int64_t>(l.strides.data(), l.rank)));
  return SubLayout{out, elem_to_bytes(l.dtype, elem)};
}

Result<SubLayout> layout_select(const TensorLayout& l, int dim, int64_t index) {
  FRUGAL_ASSIGN_OR_RETURN(int a, resolve_axis(l, dim));
  if (index < 0 || index >= l.shape[a]) {
    return out_of_range("index " + std::to_string(index) + " of dim " + std::to_string(dim) +
                        " of " + layout_to_string(l));
  }
  const int64_t elem = index * l.strides[a];
  if (is_sub_byte(l.dtype) && elem % 2 != 0) {
    return unsupported("selecting element " + std::to_string(index) + " of " + layout_to_string(l) +
                       " does not start on a byte");
  }
  std::array<int64_t, kMaxDims> shape{}, strides{};
  int r = 0;
  for (int i = 0; i < l.rank; ++i) {
    if (i == a) continue;
    shape[r] = l.shape[i];
    strides[r] = l.strides[i];
    ++r;
  }
  FRUGAL_ASSIGN_OR_RETURN(TensorLayout out,
                          make_layout(l.dtype, std::span<const int64_t>(shape.data(), r),
                                      std::span<const int64_t>(strides.data(), r)));
  return SubLayout{out, elem_to_bytes(l.dtype, elem)};
}

}  // namespace frugal
