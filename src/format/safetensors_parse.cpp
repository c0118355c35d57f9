// parse_safetensors: the header parser and validator behind SafetensorsFile::open.
//
// The JSON is read with a SAX handler rather than into a DOM: every value is checked as it
// arrives, so the first bad entry stops the parse, duplicate keys are caught (a DOM silently keeps
// the last one), nesting can never go deeper than the format allows (root -> entry -> shape), and
// memory stays proportional to the valid tensors seen so far.
#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>

#include "format/safetensors.h"
#include "format/text.h"

namespace frugal::format {
namespace {

using json = nlohmann::json;
constexpr std::string_view kMetadataKey = "__metadata__";

// Spellings from the safetensors specification that frugal does not read: a file using them is
// well-formed but unsupported, which deserves a different message from a garbled name.
constexpr std::string_view kSpecOnlyDtypes[] = {
    "BOOL", "F8_E5M2", "I16", "U16", "U32", "U64", "F64", "C64", "F4", "F6_E2M3", "F6_E3M2"};

constexpr std::string_view kSupportedList = "F32, BF16, F16, F8_E4M3, F8_E8M0, I8, U8, I32, I64";

// One JSON scalar as seen by the handler, with what it looked like for messages.
struct Scalar {
  const char* kind;      // "null", "boolean", "number", "string"
  bool is_uint = false;  // a non-negative integer that fits uint64
  uint64_t u = 0;
  const std::string* str = nullptr;  // set for strings
  std::string text;                  // the value as written, for messages
};

class HeaderSax {
 public:
  HeaderSax(std::span<const std::byte> file, std::string_view path, uint64_t data_start)
      : file_(file), path_(path), data_start_(data_start), buffer_size_(file.size() - data_start) {}

  // nlohmann SAX interface.
  bool null() { return on_scalar({.kind = "null", .text = "null"}); }
  bool boolean(bool v) { return on_scalar({.kind = "boolean", .text = v ? "true" : "false"}); }
  bool number_integer(int64_t v) {
    return on_scalar({.kind = "number",
                      .is_uint = v >= 0,
                      .u = static_cast<uint64_t>(v),
                      .text = std::to_string(v)});
  }
  bool number_unsigned(uint64_t v) {
    return on_scalar({.kind = "number", .is_uint = true, .u = v, .text = std::to_string(v)});
  }
  bool number_float(double, const std::string& s) {
    return on_scalar({.kind = "number", .text = s});
  }
  bool string(std::string& v) { return on_scalar({.kind = "string", .str = &v, .text = quote(v)}); }
  bool binary(json::binary_t&) { return fail("header holds binary data"); }
  bool start_object(size_t) { return on_open(false); }
  bool start_array(size_t) { return on_open(true); }
  bool end_object() { return on_close(); }
  bool end_array() { return on_close(); }
  bool key(std::string& k);
  bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& e) {
    // nlohmann's what() starts with "[json.exception.parse_error.101] "; keep the useful rest.
    std::string_view what = e.what();
    if (const size_t p = what.find("] "); p != std::string_view::npos) what.remove_prefix(p + 2);
    return fail("header is not valid JSON (byte " + std::to_string(position) +
                " of the header): " + std::string(what));
  }

  Status status() const { return status_; }
  bool done() const { return ctx_ == Ctx::kDone; }
  std::vector<TensorInfo> take_tensors() { return std::move(tensors_); }
  std::map<std::string, std::string> take_metadata() { return std::move(metadata_); }

 private:
  enum class Ctx { kTop, kRoot, kMetadata, kEntry, kShape, kOffsets, kDone };
  enum class Field { kNone, kDtype, kShape, kOffsets };

  bool fail(const std::string& what) {
    if (status_.ok()) status_ = corrupt(std::string(path_) + ": " + what);
    return false;
  }
  bool fail_tensor(const std::string& what) { return fail("tensor " + quote(name_) + ": " + what); }
  bool fail_unsupported(const std::string& what) {
    if (status_.ok())
      status_ = unsupported(std::string(path_) + ": tensor " + quote(name_) + ": " + what);
    return false;
  }

  bool on_scalar(const Scalar& v);
  bool on_open(bool is_array);
  bool on_close();
  bool on_dtype(const Scalar& v);
  bool finish_entry();

  std::span<const std::byte> file_;
  std::string_view path_;
  uint64_t data_start_;
  uint64_t buffer_size_;
  Status status_;

  Ctx ctx_ = Ctx::kTop;
  bool seen_metadata_ = false;
  std::string name_;      // the root key being read (tensor name or "__metadata__")
  std::string meta_key_;  // the metadata key being read
  Field field_ = Field::kNone;
  // The entry being read.
  bool has_dtype_ = false, has_shape_ = false, has_offsets_ = false;
  DType dtype_ = DType::kF32;
  std::string dtype_text_;
  std::vector<int64_t> shape_;
  uint64_t offsets_[2] = {0, 0};
  int n_offsets_ = 0;

  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

bool HeaderSax::key(std::string& k) {
  switch (ctx_) {
    case Ctx::kRoot:
      name_ = k;
      if (k == kMetadataKey) {
        if (seen_metadata_) return fail("\"__metadata__\" appears twice in the header");
        seen_metadata_ = true;
      } else if (k.empty()) {
        return fail("a tensor name is empty");
      }
      return true;
    case Ctx::kMetadata:
      if (metadata_.count(k) != 0) {
        return fail("\"__metadata__\" key " + quote(k) + " appears twice");
      }
      meta_key_ = k;
      return true;
    case Ctx::kEntry: {
      Field f = Field::kNone;
      bool seen = false;
      if (k == "dtype") {
        f = Field::kDtype, seen = has_dtype_;
      } else if (k == "shape") {
        f = Field::kShape, seen = has_shape_;
      } else if (k == "data_offsets") {
        f = Field::kOffsets, seen = has_offsets_;
      } else {
        return fail_tensor("unexpected key " + quote(k) +
                           " (an entry holds exactly dtype, shape and data_offsets)");
      }
      if (seen) return fail_tensor("key " + quote(k) + " appears twice");
      field_ = f;
      return true;
    }
    default:
      return fail("unexpected object key " +
                  quote(k));  // unreachable: objects only at kRoot/kEntry
  }
}

bool HeaderSax::on_scalar(const Scalar& v) {
  switch (ctx_) {
    case Ctx::kTop:
      return fail(std::string("header is a JSON ") + v.kind +
                  ", expected an object {name: {dtype, shape, data_offsets}, ...}");
    case Ctx::kRoot:
      if (name_ == kMetadataKey) {
        return fail(std::string("\"__metadata__\" is a JSON ") + v.kind +
                    ", expected an object of string to string");
      }
      return fail_tensor(std::string("entry is a JSON ") + v.kind +
                         ", expected an object {dtype, shape, data_offsets}");
    case Ctx::kMetadata:
      if (v.str == nullptr) {
        return fail("\"__metadata__\" value " + quote(meta_key_) + " is a JSON " + v.kind + " (" +
                    v.text + "), expected a string: metadata maps strings to strings");
      }
      metadata_.emplace(meta_key_, *v.str);
      return true;
    case Ctx::kEntry:
      switch (field_) {
        case Field::kDtype:
          return on_dtype(v);
        case Field::kShape:
          return fail_tensor(std::string("'shape' is a JSON ") + v.kind +
                             ", expected an array of non-negative integers");
        case Field::kOffsets:
        case Field::kNone:
          return fail_tensor(std::string("'data_offsets' is a JSON ") + v.kind +
                             ", expected an array [begin, end]");
      }
      return false;
    case Ctx::kShape:
      if (!v.is_uint || v.u > static_cast<uint64_t>(INT64_MAX)) {
        return fail_tensor("shape[" + std::to_string(shape_.size()) + "] is " + v.text +
                           ", expected a non-negative integer");
      }
      if (shape_.size() >= static_cast<size_t>(kMaxRank)) {
        return fail_tensor("shape has more than " + std::to_string(kMaxRank) + " dimensions");
      }
      shape_.push_back(static_cast<int64_t>(v.u));
      return true;
    case Ctx::kOffsets:
      if (n_offsets_ >= 2)
        return fail_tensor("'data_offsets' has more than 2 entries, expected [begin, end]");
      if (!v.is_uint) {
        return fail_tensor("data_offsets[" + std::to_string(n_offsets_) + "] is " + v.text +
                           ", expected a non-negative integer");
      }
      offsets_[n_offsets_++] = v.u;
      return true;
    case Ctx::kDone:
      break;
  }
  return fail("unexpected value after the header object");
}

bool HeaderSax::on_dtype(const Scalar& v) {
  if (v.str == nullptr) {
    return fail_tensor(std::string("'dtype' is a JSON ") + v.kind +
                       ", expected a string such as \"BF16\"");
  }
  has_dtype_ = true;
  dtype_text_ = *v.str;
  if (const auto d = dtype_from_safetensors_name(*v.str)) {
    dtype_ = *d;
    return true;
  }
  for (const auto spec : kSpecOnlyDtypes) {
    if (*v.str == spec) {
      return fail_unsupported("dtype " + quote(*v.str) + " is not supported (frugal reads " +
                              std::string(kSupportedList) + ")");
    }
  }
  return fail_tensor("unknown dtype " + quote(*v.str) + " (expected one of " +
                     std::string(kSupportedList) + ")");
}

bool HeaderSax::on_open(bool is_array) {
  const char* kind = is_array ? "array" : "object";
  switch (ctx_) {
    case Ctx::kTop:
      if (is_array) return fail("header is a JSON array, expected an object {name: {dtype, ...}}");
      ctx_ = Ctx::kRoot;
      return true;
    case Ctx::kRoot:
      if (name_ == kMetadataKey) {
        if (is_array)
          return fail("\"__metadata__\" is a JSON array, expected an object of string to string");
        ctx_ = Ctx::kMetadata;
        return true;
      }
      if (is_array)
        return fail_tensor(
            "entry is a JSON array, expected an object {dtype, shape, data_offsets}");
      ctx_ = Ctx::kEntry;
      field_ = Field::kNone;
      has_dtype_ = has_shape_ = has_offsets_ = false;
      shape_.clear();
      n_offsets_ = 0;
      return true;
    case Ctx::kMetadata:
      return fail("\"__metadata__\" value " + quote(meta_key_) + " is a JSON " + kind +
                  ", expected a string: metadata maps strings to strings");
    case Ctx::kEntry:
      if (field_ == Field::kShape && is_array) {
        has_shape_ = true;
        ctx_ = Ctx::kShape;
        return true;
      }
      if (field_ == Field::kOffsets && is_array) {
        has_offsets_ = true;
        ctx_ = Ctx::kOffsets;
        return true;
      }
      if (field_ == Field::kDtype) {
        return fail_tensor(std::string("'dtype' is a JSON ") + kind +
                           ", expected a string such as \"BF16\"");
      }
      return fail_tensor(std::string(field_ == Field::kShape ? "'shape'" : "'data_offsets'") +
                         " is a JSON object, expected an array");
    case Ctx::kShape:
      return fail_tensor("shape[" + std::to_string(shape_.size()) + "] is a JSON " + kind +
                         ", expected a non-negative integer");
    case Ctx::kOffsets:
      return fail_tensor("data_offsets[" + std::to_string(n_offsets_) + "] is a JSON " + kind +
                         ", expected a non-negative integer");
    case Ctx::kDone:
      break;
  }
  return fail("unexpected value after the header object");
}

bool HeaderSax::on_close() {
  switch (ctx_) {
    case Ctx::kRoot:
      ctx_ = Ctx::kDone;
      return true;
    case Ctx::kMetadata:
      ctx_ = Ctx::kRoot;
      return true;
    case Ctx::kEntry:
      if (!finish_entry()) return false;
      ctx_ = Ctx::kRoot;
      return true;
    case Ctx::kShape:
      ctx_ = Ctx::kEntry;
      return true;
    case Ctx::kOffsets:
      if (n_offsets_ != 2) {
        return fail_tensor("'data_offsets' has " + std::to_string(n_offsets_) +
                           " entries, expected [begin, end]");
      }
      ctx_ = Ctx::kEntry;
      return true;
    default:
      return fail("unbalanced JSON");  // unreachable: the parser balances brackets
  }
}

bool HeaderSax::finish_entry() {
  if (!has_dtype_) return fail_tensor("missing 'dtype'");
  if (!has_shape_) return fail_tensor("missing 'shape'");
  if (!has_offsets_) return fail_tensor("missing 'data_offsets'");
  const std::string desc = dtype_text_ + " " + shape_string(shape_);
  uint64_t numel = 1;
  for (const int64_t d : shape_) {
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) {
      return fail_tensor("shape " + shape_string(shape_) + " has more than 2^64 elements");
    }
  }
  const uint64_t elem =
      static_cast<uint64_t>(dtype_bits(dtype_)) / 8;  // whole bytes for all ST dtypes
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, elem, &bytes)) {
    return fail_tensor(desc + " needs more than 2^64 bytes");
  }
  const uint64_t begin = offsets_[0], end = offsets_[1];
  const std::string offs =
      "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
  if (begin > end) return fail_tensor(offs + " begin after end");
  if (end > buffer_size_) {
    return fail_tensor(offs + " end past the data buffer of " + std::to_string(buffer_size_) +
                       " bytes (file is " + std::to_string(file_.size()) + " bytes: truncated?)");
  }
  if (end - begin != bytes) {
    return fail_tensor(offs + " hold " + std::to_string(end - begin) + " bytes but " + desc +
                       " needs " + std::to_string(bytes));
  }
  TensorInfo t;
  t.name = name_;
  t.dtype = dtype_;
  t.shape = shape_;
  t.offset = data_start_ + begin;
  t.size = bytes;
  t.data = file_.subspan(t.offset, t.size);
  tensors_.push_back(std::move(t));
  return true;
}

// Names unique, tensors pairwise disjoint; returns the number of buffer bytes left uncovered.
Result<uint64_t> check_layout(std::vector<TensorInfo>& tensors, std::string_view path,
                              uint64_t data_start, uint64_t buffer_size) {
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  for (size_t i = 1; i < tensors.size(); ++i) {
    if (tensors[i].name == tensors[i - 1].name) {
      return corrupt(std::string(path) + ": tensor " + quote(tensors[i].name) +
                     " appears twice in the header");
    }
  }
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(tensors.size());
  for (const auto& t : tensors) {
    if (t.size > 0) by_offset.push_back(&t);  // an empty tensor holds no bytes to overlap
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->size < b->size;
  });
  uint64_t covered = 0;
  const TensorInfo* prev = nullptr;  // the tensor reaching furthest so far
  for (const TensorInfo* t : by_offset) {
    if (prev != nullptr && t->offset < prev->offset + prev->size) {
      auto range = [&](const TensorInfo* x) {
        std::string r = "[";
        r.append(std::to_string(x->offset - data_start)).append(", ");
        return r.append(std::to_string(x->offset - data_start + x->size)).append("]");
      };
      return corrupt(std::string(path) + ": tensors " + quote(prev->name) + " data_offsets " +
                     range(prev) + " and " + quote(t->name) + " data_offsets " + range(t) +
                     " overlap");
    }
    covered += t->size;
    prev = t;
  }
  return buffer_size - covered;
}

}  // namespace

uint64_t TensorInfo::numel() const {
  uint64_t n = 1;
  for (const int64_t d : shape) n *= static_cast<uint64_t>(d);  // no overflow: checked at parse
  return n;
}

Result<ParsedHeader> parse_safetensors(std::span<const std::byte> file, std::string_view path) {
  const std::string p(path);
  if (file.size() < 8) {
    return corrupt(p + ": file is " + std::to_string(file.size()) +
                   " bytes, too short for the 8-byte header length (truncated?)");
  }
  uint64_t n = 0;  // little-endian regardless of the host
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file[i]);
  if (n > kMaxHeaderBytes) {
    return corrupt(p + ": header length " + std::to_string(n) + " is over the limit of " +
                   std::to_string(kMaxHeaderBytes) + " bytes (file is " +
                   std::to_string(file.size()) + " bytes)");
  }
  if (n > file.size() - 8) {
    return corrupt(p + ": header length " + std::to_string(n) + " runs past the end of the file (" +
                   std::to_string(file.size() - 8) + " bytes follow the length field: truncated?)");
  }
  const std::string_view text(reinterpret_cast<const char*>(file.data()) + 8, n);
  if (const size_t bad = first_invalid_utf8(text); bad != std::string_view::npos) {
    const size_t from = bad > 48 ? bad - 48 : 0;
    return corrupt(p + ": header is not valid UTF-8 at byte " + std::to_string(bad) +
                   " of the header, after " + quote(text.substr(from, bad - from + 1)));
  }

  ParsedHeader out;
  out.header_bytes = n;
  out.data_start = 8 + n;
  HeaderSax sax(file, path, out.data_start);
  try {
    const bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json,
                                    /*strict=*/true);
    if (!sax.status().ok()) return sax.status();
    if (!ok || !sax.done()) return corrupt(p + ": header is not a complete JSON object");
  } catch (const std::bad_alloc&) {
    return resource_exhausted(p + ": out of memory while parsing a " + std::to_string(n) +
                              "-byte header");
  } catch (const std::exception& e) {
    return corrupt(p + ": header is not valid JSON: " + e.what());
  }
  out.tensors = sax.take_tensors();
  out.metadata = sax.take_metadata();
  FRUGAL_ASSIGN_OR_RETURN(
      out.gap_bytes, check_layout(out.tensors, path, out.data_start, file.size() - out.data_start));
  return out;
}

}  // namespace frugal::format
