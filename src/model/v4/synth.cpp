#include "model/v4/synth.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <span>

#include "core/file_write.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"

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
  double unit() { return static_cast<double>(bits() >> 11) * 0x1p-53; }  // [0, 1)
  uint64_t below(uint64_t n) { return bits() % n; }  // bias is irrelevant for test data
  void skip(uint64_t draws) { gen_.discard(draws); }

 private:
  std::mt19937_64 gen_;
};

// splitmix64's finalizer (Steele, Lea, Flood 2014): seeds of streams independent of the main one.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

enum class Stream : uint64_t { kPopularity = 1, kTid2eid = 2 };
uint64_t stream_seed(uint64_t seed, Stream s, int32_t block) {
  return mix(mix(seed) ^ mix(static_cast<uint64_t>(s) << 32 | static_cast<uint32_t>(block)));
}

void put_f32(std::byte* out, float v) { std::memcpy(out, &v, 4); }

// Truncation is enough here: the values only need to be valid bf16, not the nearest one.
void put_bf16(std::byte* out, float v) {
  uint32_t bits = 0;
  std::memcpy(&bits, &v, 4);
  const uint16_t hi = static_cast<uint16_t>(bits >> 16);
  std::memcpy(out, &hi, 2);
}

void put_id(std::byte* out, size_t width, int64_t id) {
  if (width == 8) {
    std::memcpy(out, &id, 8);
  } else {
    const int32_t v = static_cast<int32_t>(id);
    std::memcpy(out, &v, 4);
  }
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

using Emit = std::function<Status(std::span<const std::byte>)>;

// Generates the tensors of a table one after another, in table order, each in pieces of at most
// kPiece bytes handed to `emit`: the memory is one piece, whatever the tensor's size.
class Synthesizer {
 public:
  static constexpr size_t kPiece = size_t{1} << 20;

  Synthesizer(const TensorTable& table, uint64_t seed, std::optional<double> skew)
      : table_(table), seed_(seed), skew_(skew), rng_(seed), piece_(kPiece) {}

  Status produce(const TensorSpec& spec, const Emit& emit) {
    FRUGAL_CHECK_MSG(next_ < table_.entries().size() && &spec == &table_.entries()[next_],
                     "synth: tensors must be produced in table order");
    ++next_;
    switch (spec.dtype) {
      case DType::kF32:
      case DType::kBF16:
        if (spec.kind == TensorKind::kGateBias && skew_) return skewed_bias(spec, emit);
        return floats(spec, emit);
      case DType::kF8E4M3:
        return bytes(spec, emit, [this] {
          uint8_t code = static_cast<uint8_t>(rng_.bits());
          if ((code & 0x7f) == 0x7f) code &= 0xfe;  // 0x7f / 0xff are NaN
          return code;
        });
      case DType::kF8E8M0:  // 2^-10..2^-4
        return bytes(spec, emit, [this] { return static_cast<uint8_t>(117 + rng_.below(7)); });
      case DType::kI8:  // packed e2m1: every nibble is a valid code
        return bytes(spec, emit, [this] { return static_cast<uint8_t>(rng_.bits()); });
      case DType::kI64:
      case DType::kI32:
        if (skew_ && *skew_ > 0) return skewed_tid2eid(spec, emit);
        return tid2eid(spec, emit);
      default:
        FRUGAL_CHECK_MSG(false, "synth: no generator for this dtype");
    }
    return ok_status();
  }

 private:
  // One value per element, `elem` bytes each, written by put(piece pointer) in pieces.
  template <typename Put>
  Status elements(uint64_t n, size_t elem, const Emit& emit, Put put) {
    const uint64_t per_piece = kPiece / elem;
    for (uint64_t i = 0; i < n;) {
      const uint64_t m = std::min(per_piece, n - i);
      for (uint64_t j = 0; j < m; ++j) put(piece_.data() + j * elem);
      FRUGAL_RETURN_IF_ERROR(emit(std::span(piece_.data(), m * elem)));
      i += m;
    }
    return ok_status();
  }

  template <typename Draw>
  Status bytes(const TensorSpec& spec, const Emit& emit, Draw draw) {
    return elements(spec.numel(), 1, emit, [&](std::byte* p) { *p = std::byte{draw()}; });
  }

  Status floats(const TensorSpec& spec, const Emit& emit) {
    float lo = 0, hi = 0;
    float_range(spec, &lo, &hi);
    if (spec.dtype == DType::kF32)
      return elements(spec.numel(), 4, emit,
                      [&](std::byte* p) { put_f32(p, rng_.uniform(lo, hi)); });
    return elements(spec.numel(), 2, emit,
                    [&](std::byte* p) { put_bf16(p, rng_.uniform(lo, hi)); });
  }

  // bias[e] = -S * kSkewBeta * ln(rank_e); the default's draws are skipped, not used.
  Status skewed_bias(const TensorSpec& spec, const Emit& emit) {
    FRUGAL_CHECK(spec.dtype == DType::kF32 &&
                 spec.numel() == static_cast<uint64_t>(table_.n_routed_experts()));
    rng_.skip(spec.numel());
    const std::vector<int32_t> order =
        synth_popularity_order(seed_, spec.block, table_.n_routed_experts());
    std::vector<std::byte> out(spec.bytes());
    for (size_t r = 0; r < order.size(); ++r) {
      // + 0.0f: rank 1 gets +0, not -0.
      const float b = static_cast<float>(-*skew_ * kSkewBeta * std::log(double(r + 1))) + 0.0f;
      put_f32(out.data() + 4 * static_cast<size_t>(order[r]), b);
    }
    return emit(out);
  }

  // Each row lists distinct experts (partial Fisher-Yates over all experts).
  Status tid2eid(const TensorSpec& spec, const Emit& emit) {
    const int64_t n_experts = table_.n_routed_experts();
    FRUGAL_CHECK(spec.shape.size() == 2 && spec.shape[1] <= n_experts);
    const size_t width = dtype_bits(spec.dtype) / 8;
    const int64_t k_per_row = spec.shape[1];
    std::vector<int64_t> perm(static_cast<size_t>(n_experts));
    return rows(spec, emit, [&](std::byte* row) {
      std::iota(perm.begin(), perm.end(), 0);
      for (int64_t k = 0; k < k_per_row; ++k) {
        const uint64_t j =
            static_cast<uint64_t>(k) + rng_.below(static_cast<uint64_t>(n_experts - k));
        std::swap(perm[static_cast<size_t>(k)], perm[j]);
        put_id(row + k * width, width, perm[static_cast<size_t>(k)]);
      }
    });
  }

  // Zipf without replacement over the block's popularity order, from a stream of its own; the
  // default's draws (one per id) are skipped so later tensors keep their bytes.
  Status skewed_tid2eid(const TensorSpec& spec, const Emit& emit) {
    const int64_t n_experts = table_.n_routed_experts();
    FRUGAL_CHECK(spec.shape.size() == 2 && spec.shape[1] <= n_experts);
    rng_.skip(spec.numel());
    const size_t width = dtype_bits(spec.dtype) / 8;
    const int64_t k_per_row = spec.shape[1];
    const std::vector<int32_t> order = synth_popularity_order(seed_, spec.block, n_experts);
    std::vector<double> weight(order.size());
    for (size_t r = 0; r < weight.size(); ++r) weight[r] = std::pow(double(r + 1), -*skew_);
    const double all = std::accumulate(weight.begin(), weight.end(), 0.0);
    Rng rng(stream_seed(seed_, Stream::kTid2eid, spec.block));
    std::vector<uint8_t> taken(order.size());
    std::vector<size_t> picked;
    return rows(spec, emit, [&](std::byte* row) {
      double left = all;
      for (int64_t k = 0; k < k_per_row; ++k) {
        const double u = rng.unit() * left;
        size_t r = 0, last = 0;
        double sum = 0;
        for (; r < weight.size(); ++r) {
          if (taken[r]) continue;
          last = r;
          sum += weight[r];
          if (u < sum) break;
        }
        if (r == weight.size()) r = last;  // u fell past the end by rounding
        taken[r] = 1;
        picked.push_back(r);
        left -= weight[r];
        put_id(row + k * width, width, order[r]);
      }
      for (const size_t r : picked) taken[r] = 0;
      picked.clear();
    });
  }

  template <typename FillRow>
  Status rows(const TensorSpec& spec, const Emit& emit, FillRow fill_row) {
    const size_t row_bytes = static_cast<size_t>(spec.shape[1]) * (dtype_bits(spec.dtype) / 8);
    if (row_bytes == 0) return ok_status();
    const int64_t per_piece = static_cast<int64_t>(std::max<size_t>(1, kPiece / row_bytes));
    std::vector<std::byte> buf(static_cast<size_t>(per_piece) * row_bytes);
    for (int64_t i = 0; i < spec.shape[0];) {
      const int64_t m = std::min(per_piece, spec.shape[0] - i);
      for (int64_t j = 0; j < m; ++j) fill_row(buf.data() + j * row_bytes);
      FRUGAL_RETURN_IF_ERROR(emit(std::span(buf.data(), static_cast<size_t>(m) * row_bytes)));
      i += m;
    }
    return ok_status();
  }

  const TensorTable& table_;
  uint64_t seed_;
  std::optional<double> skew_;
  Rng rng_;  // the main stream, over all tensors in table order
  size_t next_ = 0;
  std::vector<std::byte> piece_;
};

Status check_skew(std::optional<double> skew) {
  if (skew && !(*skew >= 0 && *skew <= kMaxSkew)) {
    return invalid_argument("skew " + std::to_string(*skew) + ": must be in [0, " +
                            std::to_string(static_cast<int>(kMaxSkew)) + "]");
  }
  return ok_status();
}

}  // namespace

std::vector<int32_t> synth_popularity_order(uint64_t seed, int32_t block, int64_t n_experts) {
  std::vector<int32_t> order(static_cast<size_t>(n_experts));
  std::iota(order.begin(), order.end(), 0);
  Rng rng(stream_seed(seed, Stream::kPopularity, block));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

std::vector<SynthTensor> synth_tensors(const TensorTable& table, uint64_t seed,
                                       std::optional<double> skew) {
  FRUGAL_CHECK(check_skew(skew).ok());
  std::vector<SynthTensor> out;
  out.reserve(table.entries().size());
  Synthesizer synth(table, seed, skew);
  for (const TensorSpec& spec : table.entries()) {
    SynthTensor t{.spec = &spec, .data = {}};
    t.data.reserve(spec.bytes());
    const Status s = synth.produce(spec, [&](std::span<const std::byte> piece) {
      t.data.insert(t.data.end(), piece.begin(), piece.end());
      return ok_status();
    });
    FRUGAL_CHECK(s.ok());
    out.push_back(std::move(t));
  }
  return out;
}

Status write_synth_checkpoint(const DeepSeekV4Config& config, const std::string& dir,
                              const SynthOptions& options) {
  FRUGAL_RETURN_IF_ERROR(validate_config(config));
  FRUGAL_RETURN_IF_ERROR(check_skew(options.skew));
  const TensorTable table(config);
  std::vector<format::TensorToStream> tensors;
  tensors.reserve(table.entries().size());
  for (const TensorSpec& spec : table.entries()) {
    // A routed expert (w1 first) is one unit for sharding; see "File order" in synth.h.
    const bool rest_of_expert = spec.expert != kNoExpert && spec.kind != TensorKind::kExpertW1;
    tensors.push_back({.name = spec.name,
                       .dtype = spec.dtype,
                       .shape = spec.shape,
                       .same_shard_as_previous = rest_of_expert});
  }
  Synthesizer synth(table, options.seed, options.skew);
  const format::TensorProducer produce = [&](size_t i, format::TensorSink& sink) {
    return synth.produce(table.entries()[i],
                         [&](std::span<const std::byte> piece) { return sink.append(piece); });
  };
  // Built under a temporary name beside `dir` and put in place whole, so a reader, or a second
  // writer of the same directory, never sees shards of one checkpoint with the index of another.
  FRUGAL_ASSIGN_OR_RETURN(StagedDirectory staged, StagedDirectory::create(dir));
  FRUGAL_RETURN_IF_ERROR(format::write_sharded_streamed(
      staged.path(), tensors, produce,
      {.max_shard_bytes = options.max_shard_bytes, .on_written = options.on_written}));
  FRUGAL_RETURN_IF_ERROR(write_file_atomic(staged.path() + "/config.json", config_to_json(config)));
  return staged.commit(is_checkpoint_file);
}

bool is_checkpoint_file(std::string_view name) {
  const auto ends_with = [&](std::string_view s) { return name.ends_with(s); };
  return name == "config.json" || name == "model.safetensors.index.json" ||
         (name.starts_with("model") && ends_with(".safetensors"));
}

}  // namespace frugal::v4
