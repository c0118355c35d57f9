#include "model/v4/synth.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "core/file_write.h"
#include "format/safetensors.h"

namespace frugal::v4 {
namespace {

// mt19937_64 is specified bit for bit by the standard; the distributions are not, so values are
// derived from raw draws by hand to keep files identical across standard libraries.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  uint64_t bits() { return gen_(); }
  float uniform(float lo, float hi) {  // [lo, hi)
    const float u = static_cast<float>(bits() >> 40) * (1.0f / 16777216.0f);
    return lo + (hi - lo) * u;
  }
  uint64_t below(uint64_t n) { return bits() % n; }  // bias is irrelevant for test data

 private:
  std::mt19937_64 gen_;
};

void put_f32(std::byte* out, float v) { std::memcpy(out, &v, 4); }

// Truncation is enough here: the values only need to be valid bf16, not the nearest one.
void put_bf16(std::byte* out, float v) {
  uint32_t bits = 0;
  std::memcpy(&bits, &v, 4);
  const uint16_t hi = static_cast<uint16_t>(bits >> 16);
  std::memcpy(out, &hi, 2);
}

// Range of a float tensor by role, loosely following the reference initial values: norm weights
// near 1, hc scales near 0.5, matrices scaled by fan-in.
void float_range(const TensorSpec& spec, float* lo, float* hi) {
  switch (spec.kind) {
    case TensorKind::kNorm:
    case TensorKind::kAttnNorm:
    case TensorKind::kFfnNorm:
    case TensorKind::kQNorm:
    case TensorKind::kKvNorm:
    case TensorKind::kCompressorNorm:
    case TensorKind::kIndexerCompressorNorm:
    case TensorKind::kMtpEnorm:
    case TensorKind::kMtpHnorm:
      *lo = 0.9f, *hi = 1.1f;
      return;
    case TensorKind::kHcHeadScale:
    case TensorKind::kHcAttnScale:
    case TensorKind::kHcFfnScale:
      *lo = 0.4f, *hi = 0.6f;
      return;
    case TensorKind::kEmbed:
      *lo = -1.0f, *hi = 1.0f;
      return;
    default:
      break;
  }
  if (spec.shape.size() == 2) {
    const float a = 1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(spec.shape[1], 1)));
    *lo = -a, *hi = a;
  } else {
    *lo = -0.5f, *hi = 0.5f;
  }
}

void fill(const TensorSpec& spec, int64_t n_experts, Rng& rng, std::vector<std::byte>& out) {
  const uint64_t n = spec.numel();
  std::byte* p = out.data();
  switch (spec.dtype) {
    case DType::kF32:
    case DType::kBF16: {
      float lo = 0, hi = 0;
      float_range(spec, &lo, &hi);
      for (uint64_t i = 0; i < n; ++i) {
        if (spec.dtype == DType::kF32)
          put_f32(p + 4 * i, rng.uniform(lo, hi));
        else
          put_bf16(p + 2 * i, rng.uniform(lo, hi));
      }
      return;
    }
    case DType::kF8E4M3:
      for (uint64_t i = 0; i < n; ++i) {
        uint8_t code = static_cast<uint8_t>(rng.bits());
        if ((code & 0x7f) == 0x7f) code &= 0xfe;  // 0x7f / 0xff are NaN
        p[i] = static_cast<std::byte>(code);
      }
      return;
    case DType::kF8E8M0:
      for (uint64_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>(117 + rng.below(7));
      return;
    case DType::kI8:  // packed e2m1: every nibble is a valid code
      for (uint64_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>(rng.bits());
      return;
    case DType::kI64:
    case DType::kI32: {
      // tid2eid: each row lists distinct experts (partial Fisher-Yates over all experts).
      FRUGAL_CHECK(spec.shape.size() == 2 && spec.shape[1] <= n_experts);
      const size_t width = dtype_bits(spec.dtype) / 8;
      std::vector<int64_t> perm(static_cast<size_t>(n_experts));
      for (int64_t row = 0; row < spec.shape[0]; ++row) {
        std::iota(perm.begin(), perm.end(), 0);
        for (int64_t k = 0; k < spec.shape[1]; ++k) {
          const uint64_t j =
              static_cast<uint64_t>(k) + rng.below(static_cast<uint64_t>(n_experts - k));
          std::swap(perm[static_cast<size_t>(k)], perm[j]);
          const uint64_t at = (static_cast<uint64_t>(row * spec.shape[1] + k)) * width;
          if (width == 8) {
            std::memcpy(p + at, &perm[static_cast<size_t>(k)], 8);
          } else {
            const int32_t v = static_cast<int32_t>(perm[static_cast<size_t>(k)]);
            std::memcpy(p + at, &v, 4);
          }
        }
      }
      return;
    }
    default:
      FRUGAL_CHECK_MSG(false, "synth: no generator for this dtype");
  }
}

}  // namespace

std::vector<SynthTensor> synth_tensors(const TensorTable& table, uint64_t seed) {
  std::vector<SynthTensor> out;
  out.reserve(table.entries().size());
  Rng rng(seed);
  for (const TensorSpec& spec : table.entries()) {
    SynthTensor t{.spec = &spec, .data = std::vector<std::byte>(spec.bytes())};
    fill(spec, table.n_routed_experts(), rng, t.data);
    out.push_back(std::move(t));
  }
  return out;
}

Status write_synth_checkpoint(const DeepSeekV4Config& config, const std::string& dir,
                              const SynthOptions& options) {
  FRUGAL_RETURN_IF_ERROR(validate_config(config));
  const TensorTable table(config);
  const std::vector<SynthTensor> tensors = synth_tensors(table, options.seed);
  std::vector<format::TensorToWrite> writes;
  writes.reserve(tensors.size());
  for (const SynthTensor& t : tensors)
    writes.push_back(
        {.name = t.spec->name, .dtype = t.spec->dtype, .shape = t.spec->shape, .data = t.data});
  // Built under a temporary name beside `dir` and put in place whole, so a reader, or a second
  // writer of the same directory, never sees shards of one checkpoint with the index of another.
  FRUGAL_ASSIGN_OR_RETURN(StagedDirectory staged, StagedDirectory::create(dir));
  FRUGAL_RETURN_IF_ERROR(format::write_sharded(staged.path(), writes, options.max_shard_bytes));
  FRUGAL_RETURN_IF_ERROR(write_file_atomic(staged.path() + "/config.json", config_to_json(config)));
  return staged.commit(is_checkpoint_file);
}

bool is_checkpoint_file(std::string_view name) {
  const auto ends_with = [&](std::string_view s) { return name.ends_with(s); };
  return name == "config.json" || name == "model.safetensors.index.json" ||
         (name.starts_with("model") && ends_with(".safetensors"));
}

}  // namespace frugal::v4
