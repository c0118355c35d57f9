#include "model/v4/checkpoint_check.h"

#include <cstring>
#include <string>
#include <vector>

namespace frugal::v4 {
namespace {

std::string dtype_label(DType t) {
  auto st = dtype_safetensors_name(t);
  return st ? std::string(*st) : std::string(dtype_name(t));
}

std::string expected_dtypes(const TensorSpec& spec) {
  std::string s = dtype_label(spec.dtype);
  if (spec.has_alt) s += " or " + dtype_label(spec.alt_dtype);
  return s;
}

class Report {
 public:
  explicit Report(size_t max_lines) : max_lines_(max_lines) {}
  void add(std::string line) {
    ++count_;
    if (lines_.size() < max_lines_) lines_.push_back(std::move(line));
  }
  size_t count() const { return count_; }
  Status to_status(const std::string& root) const {
    if (count_ == 0) return ok_status();
    std::string msg =
        root + ": checkpoint does not match the DeepSeek-V4 config: " + std::to_string(count_) +
        (count_ == 1 ? " problem" : " problems");
    for (const std::string& l : lines_) msg += "\n  " + l;
    if (count_ > lines_.size())
      msg += "\n  ... and " + std::to_string(count_ - lines_.size()) + " more";
    return corrupt(std::move(msg));
  }

 private:
  size_t max_lines_;
  size_t count_ = 0;
  std::vector<std::string> lines_;
};

std::string where(const format::TensorInfo& t) {
  return "tensor '" + t.name + "' in " + (t.file ? *t.file : std::string("?"));
}

// e8m0 byte 0xff is NaN (doc §2.B: reject at load). memchr keeps this at memory speed.
void scan_e8m0(const format::TensorInfo& t, Report& report) {
  const auto* p = reinterpret_cast<const unsigned char*>(t.data.data());
  const size_t n = t.data.size();
  const void* hit = std::memchr(p, 0xff, n);
  if (hit == nullptr) return;
  const size_t first = static_cast<size_t>(static_cast<const unsigned char*>(hit) - p);
  size_t bad = 0;
  for (size_t i = first; i < n; ++i) bad += p[i] == 0xff;
  report.add(where(t) + ": e8m0 scale byte 0xff (NaN) at index " + std::to_string(first) + " (" +
             std::to_string(bad) + (bad == 1 ? " such byte)" : " such bytes)"));
}

// tid2eid[token][k] must name a routed expert; row = token id (reference Gate.forward).
void scan_expert_ids(const format::TensorInfo& t, int64_t n_experts, int64_t row_len,
                     Report& report) {
  const size_t width = t.dtype == DType::kI64 ? 8 : 4;
  const size_t n = t.data.size() / width;
  size_t bad = 0;
  size_t first = 0;
  int64_t first_value = 0;
  for (size_t i = 0; i < n; ++i) {
    int64_t v = 0;
    if (width == 8) {
      std::memcpy(&v, t.data.data() + i * 8, 8);
    } else {
      int32_t v32 = 0;
      std::memcpy(&v32, t.data.data() + i * 4, 4);
      v = v32;
    }
    if (v >= 0 && v < n_experts) continue;
    if (bad++ == 0) {
      first = i;
      first_value = v;
    }
  }
  if (bad == 0) return;
  const size_t cols = static_cast<size_t>(row_len > 0 ? row_len : 1);
  report.add(where(t) + ": expert id " + std::to_string(first_value) + " at [" +
             std::to_string(first / cols) + ", " + std::to_string(first % cols) +
             "] is outside [0, " + std::to_string(n_experts) + ") (" + std::to_string(bad) +
             (bad == 1 ? " such id)" : " such ids)"));
}

}  // namespace

Status check_checkpoint(const TensorTable& table, const format::Checkpoint& checkpoint,
                        const CheckOptions& options) {
  Report report(options.max_reported);
  for (const TensorSpec& spec : table.entries()) {
    const format::TensorInfo* t = checkpoint.find(spec.name);
    if (t == nullptr) {
      report.add("missing tensor '" + spec.name + "' (expected " + expected_dtypes(spec) + " " +
                 shape_to_string(spec.shape) + ")");
      continue;
    }
    const bool dtype_ok = spec.accepts(t->dtype);
    const bool shape_ok = t->shape == spec.shape;
    if (!dtype_ok)
      report.add(where(*t) + ": dtype " + dtype_label(t->dtype) + ", expected " +
                 expected_dtypes(spec));
    if (!shape_ok)
      report.add(where(*t) + ": shape " + shape_to_string(t->shape) + ", expected " +
                 shape_to_string(spec.shape));
    if (!dtype_ok || !shape_ok || !options.scan_values) continue;
    if (options.shard != nullptr && !holds_tensor(*options.shard, spec)) continue;
    const bool routed = spec.expert != kNoExpert;
    if (spec.value_check == ValueCheck::kE8m0Scale && t->dtype == DType::kF8E8M0 &&
        (!routed || options.scan_routed_experts))
      scan_e8m0(*t, report);
    if (spec.value_check == ValueCheck::kExpertIds)
      scan_expert_ids(*t, table.n_routed_experts(), spec.shape.size() == 2 ? spec.shape[1] : 1,
                      report);
  }
  for (const format::TensorInfo* t : checkpoint.tensors()) {
    if (table.find_name(t->name) != nullptr) continue;
    report.add("unexpected " + where(*t) + " (" + dtype_label(t->dtype) + " " +
               shape_to_string(t->shape) +
               "): not part of a DeepSeek-V4 checkpoint with this config");
  }
  return report.to_status(checkpoint.root());
}

Status check_checkpoint(const DeepSeekV4Config& config, const format::Checkpoint& checkpoint,
                        const CheckOptions& options) {
  FRUGAL_RETURN_IF_ERROR(validate_config(config));
  const TensorTable table(config);
  return check_checkpoint(table, checkpoint, options);
}

}  // namespace frugal::v4
