#include "model/v4/weights.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/convert.h"
#include "core/log.h"
#include "core/mmap_file.h"
#include "model/v4/checkpoint_check.h"
#include "model/v4/tensor_table.h"
#include "quant/weight.h"

namespace frugal::v4 {
namespace {

using quant::WeightFormat;

TensorKind scale_of(TensorKind k) { return static_cast<TensorKind>(static_cast<int>(k) + 1); }

// Turns table entries into views. The checkpoint has been checked against the table already, so a
// lookup failure here is reported but not expected.
class Binder {
 public:
  // copy_budget: an upper bound of the bytes copy_to_huge_pages() will be asked for (the
  // checkpoint's size plus alignment), so that the last chunk is not larger than needed.
  Binder(const TensorTable& table, ModelWeights& w, WeightPlacement placement, uint64_t copy_budget,
         ByteProgress* progress)
      : table_(table), w_(w), placement_(placement), copy_left_(copy_budget), progress_(progress) {}

  Result<const format::TensorInfo*> info(TensorKind kind, int32_t block, int32_t expert = -1) {
    const TensorSpec* spec = table_.find(kind, block, expert);
    if (spec == nullptr) {
      return internal_error("tensor table has no entry for kind " +
                            std::to_string(static_cast<int>(kind)) + " block " +
                            std::to_string(block));
    }
    const format::TensorInfo* t = w_.checkpoint.find(spec->name);
    if (t == nullptr)
      return not_found(w_.checkpoint.root() + ": missing tensor '" + spec->name + "'");
    return t;
  }

  // The view format and column count of a linear weight tensor, and its scale tensor (FP8 and
  // MXFP4) checked to be e8m0; reads no tensor bytes.
  Result<TensorRef> locate(TensorKind kind, int32_t block, int32_t expert = -1) {
    FRUGAL_ASSIGN_OR_RETURN(const format::TensorInfo* t, info(kind, block, expert));
    TensorRef r;
    r.weight = t;
    r.rows = t->shape[0];
    r.cols = t->shape[1];
    switch (t->dtype) {
      case DType::kF32:
        r.format = WeightFormat::kF32;
        break;
      case DType::kBF16:
        r.format = WeightFormat::kBF16;
        break;
      case DType::kF8E4M3:
        r.format = WeightFormat::kFP8Block;
        break;
      case DType::kI8:  // packed e2m1, declared I8 [out, in/2]
        r.format = WeightFormat::kMXFP4;
        r.cols = 2 * t->shape[1];
        break;
      default:
        return unsupported(*t->file + ": tensor '" + t->name + "' has dtype " +
                           std::string(dtype_name(t->dtype)) + ", not a linear weight dtype");
    }
    if (r.format == WeightFormat::kFP8Block || r.format == WeightFormat::kMXFP4) {
      FRUGAL_ASSIGN_OR_RETURN(r.scale, info(scale_of(kind), block, expert));
      if (r.scale->dtype != DType::kF8E8M0) {
        return unsupported(*r.scale->file + ": tensor '" + r.scale->name + "' has dtype " +
                           std::string(dtype_name(r.scale->dtype)) +
                           "; only e8m0 block scales are supported by the kernels");
      }
    }
    return r;
  }

  Result<WeightView> linear(TensorKind kind, int32_t block, int32_t expert = -1) {
    FRUGAL_ASSIGN_OR_RETURN(const TensorRef r, locate(kind, block, expert));
    const format::TensorInfo* t = r.weight;
    const WeightFormat f = r.format;
    const int64_t rows = r.rows, cols = r.cols;
    const void* data = t->data.data();
    const uint8_t* scales = nullptr;
    uint64_t scale_bytes = 0;
    if (r.scale != nullptr) {
      scales = reinterpret_cast<const uint8_t*>(r.scale->data.data());
      scale_bytes = r.scale->size;
    } else if (!is_aligned(data, f == WeightFormat::kF32 ? 4 : 2)) {
      FRUGAL_ASSIGN_OR_RETURN(float* copy, own_floats((t->size + 3) / 4));
      std::memcpy(copy, data, t->size);
      data = copy;
    }
    if (placement_ == WeightPlacement::kHugePages) {
      FRUGAL_ASSIGN_OR_RETURN(data, copy_to_huge_pages(data, t->size));
      if (scales != nullptr) {
        FRUGAL_ASSIGN_OR_RETURN(const void* s, copy_to_huge_pages(scales, scale_bytes));
        scales = static_cast<const uint8_t*>(s);
      }
    }
    const std::string what = *t->file + ": " + t->name;
    FRUGAL_ASSIGN_OR_RETURN(WeightView view, quant::make_weight_view(f, rows, cols, data, t->size,
                                                                     scales, scale_bytes, what));
    // The SIMD kernels assume NaN-free codes (they decode e4m3 0x7f/0xff as 480): reject them here.
    FRUGAL_RETURN_IF_ERROR(quant::check_weight_codes(view, what));
    return view;
  }

  // W as f32 (exact), owned.
  Result<WeightView> to_f32(const WeightView& w) {
    FRUGAL_ASSIGN_OR_RETURN(float* out, own_floats(static_cast<uint64_t>(w.rows * w.cols)));
    quant::dequantize(w, out);
    WeightView v = w;
    v.format = WeightFormat::kF32;
    v.data = out;
    v.scales = nullptr;
    return v;
  }

  // An f32 view of a bf16 or f32 tensor (copied when bf16 or not 4-byte aligned).
  Result<const float*> f32(TensorKind kind, int32_t block, int32_t expert = -1) {
    FRUGAL_ASSIGN_OR_RETURN(const format::TensorInfo* t, info(kind, block, expert));
    const uint64_t n = t->numel();
    if (t->dtype == DType::kF32 && is_aligned(t->data.data(), 4)) {
      return reinterpret_cast<const float*>(t->data.data());
    }
    FRUGAL_ASSIGN_OR_RETURN(float* out, own_floats(n));
    if (t->dtype == DType::kF32) {
      std::memcpy(out, t->data.data(), n * sizeof(float));
    } else if (t->dtype == DType::kBF16) {
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, t->data.data() + 2 * i, 2);
        out[i] = bf16_to_f32(b);
      }
    } else {
      return unsupported(*t->file + ": tensor '" + t->name + "' has dtype " +
                         std::string(dtype_name(t->dtype)) + ", expected F32 or BF16");
    }
    return static_cast<const float*>(out);
  }

  // tid2eid as int32 with every id checked against [0, n_routed_experts).
  Result<const int32_t*> expert_ids(int32_t block, int64_t n_experts) {
    FRUGAL_ASSIGN_OR_RETURN(const format::TensorInfo* t, info(TensorKind::kGateTid2eid, block));
    const uint64_t n = t->numel();
    FRUGAL_ASSIGN_OR_RETURN(float* raw, own_floats(n));  // float-sized slots hold int32 ids
    int32_t* out = reinterpret_cast<int32_t*>(raw);
    for (uint64_t i = 0; i < n; ++i) {
      int64_t id = 0;
      if (t->dtype == DType::kI64) {
        std::memcpy(&id, t->data.data() + 8 * i, 8);
      } else {
        int32_t v;
        std::memcpy(&v, t->data.data() + 4 * i, 4);
        id = v;
      }
      if (id < 0 || id >= n_experts) {
        return corrupt(*t->file + ": tensor '" + t->name + "': expert id " + std::to_string(id) +
                       " at element " + std::to_string(i) + " is outside [0, " +
                       std::to_string(n_experts) + ")");
      }
      out[i] = static_cast<int32_t>(id);
    }
    return static_cast<const int32_t*>(out);
  }

 private:
  static bool is_aligned(const void* p, uintptr_t a) {
    return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0;
  }
  Result<float*> own_floats(uint64_t n) {
    FRUGAL_ASSIGN_OR_RETURN(AlignedBuffer b,
                            AlignedBuffer::allocate(n * sizeof(float), &w_.owned_stats));
    w_.owned.push_back(std::move(b));
    return w_.owned.back().as<float>();
  }

  // Bump allocation in huge-page chunks of 256 MiB (less when the budget left is smaller), 64-byte
  // aligned; a tensor larger than a chunk gets a buffer of its own. Buffers never move, so the
  // pointers handed out stay valid.
  Result<const void*> copy_to_huge_pages(const void* src, uint64_t n) {
    constexpr uint64_t kChunk = uint64_t{256} << 20;
    const uint64_t need = (n + 63) / 64 * 64;
    uint8_t* dst = nullptr;
    if (need > kChunk) {
      FRUGAL_ASSIGN_OR_RETURN(dst, huge_buffer(need));
    } else {
      if (chunk_ == nullptr || need > chunk_size_ - chunk_used_) {
        chunk_size_ = std::max(need, std::min(kChunk, copy_left_));
        FRUGAL_ASSIGN_OR_RETURN(chunk_, huge_buffer(chunk_size_));
        chunk_used_ = 0;
      }
      dst = chunk_ + chunk_used_;
      chunk_used_ += need;
    }
    copy_left_ -= std::min(copy_left_, need);
    w_.placed_bytes += need;
    std::memcpy(dst, src, n);
    release_mapped_pages(src, n);  // the copy replaces the mapped pages: keep the RSS at 1x
    if (progress_ != nullptr) progress_->add(n);
    return static_cast<const void*>(dst);
  }
  Result<uint8_t*> huge_buffer(uint64_t bytes) {
    FRUGAL_ASSIGN_OR_RETURN(
        AlignedBuffer b,
        AlignedBuffer::allocate(bytes, &w_.placed_stats, {.huge_pages = HugePages::kAlways}));
    w_.owned.push_back(std::move(b));
    return w_.owned.back().as<uint8_t>();
  }

  const TensorTable& table_;
  ModelWeights& w_;
  WeightPlacement placement_;
  uint64_t copy_left_ = 0;
  ByteProgress* progress_ = nullptr;
  uint8_t* chunk_ = nullptr;
  uint64_t chunk_size_ = 0;
  uint64_t chunk_used_ = 0;
};

Status bind_compressor(Binder& b, int32_t block, bool indexer, int64_t ratio, int64_t width,
                       CompressorWeights& c) {
  c.ratio = ratio;
  c.width = width;
  c.overlap = ratio == 4;
  c.rotate = indexer;
  const TensorKind wkv = indexer ? TensorKind::kIndexerCompressorWkv : TensorKind::kCompressorWkv;
  const TensorKind wg =
      indexer ? TensorKind::kIndexerCompressorWgate : TensorKind::kCompressorWgate;
  const TensorKind ape = indexer ? TensorKind::kIndexerCompressorApe : TensorKind::kCompressorApe;
  const TensorKind nrm = indexer ? TensorKind::kIndexerCompressorNorm : TensorKind::kCompressorNorm;
  FRUGAL_ASSIGN_OR_RETURN(c.wkv, b.linear(wkv, block));
  FRUGAL_ASSIGN_OR_RETURN(c.wgate, b.linear(wg, block));
  FRUGAL_ASSIGN_OR_RETURN(c.ape, b.f32(ape, block));
  FRUGAL_ASSIGN_OR_RETURN(c.norm, b.f32(nrm, block));
  return ok_status();
}

// mirrors Attention.__init__
Status bind_attention(Binder& b, const DeepSeekV4Config& cfg, int32_t block, AttentionWeights& a) {
  FRUGAL_ASSIGN_OR_RETURN(a.attn_sink, b.f32(TensorKind::kAttnSink, block));
  FRUGAL_ASSIGN_OR_RETURN(a.wq_a, b.linear(TensorKind::kWqA, block));
  FRUGAL_ASSIGN_OR_RETURN(a.q_norm, b.f32(TensorKind::kQNorm, block));
  FRUGAL_ASSIGN_OR_RETURN(a.wq_b, b.linear(TensorKind::kWqB, block));
  FRUGAL_ASSIGN_OR_RETURN(a.wkv, b.linear(TensorKind::kWkv, block));
  FRUGAL_ASSIGN_OR_RETURN(a.kv_norm, b.f32(TensorKind::kKvNorm, block));
  FRUGAL_ASSIGN_OR_RETURN(a.wo_a, b.linear(TensorKind::kWoA, block));
  FRUGAL_ASSIGN_OR_RETURN(a.wo_b, b.linear(TensorKind::kWoB, block));
  if (a.wo_a.format == quant::WeightFormat::kFP8Block && cfg.o_lora_rank % 128 != 0) {
    FRUGAL_ASSIGN_OR_RETURN(a.wo_a, b.to_f32(a.wo_a));  // FP8 slices need 128-row alignment
    FRUGAL_LOG_INFO("v4: block %d: wo_a dequantized to f32 (o_lora_rank %lld)", block,
                    static_cast<long long>(cfg.o_lora_rank));
  }
  for (int64_t g = 0; g < cfg.o_groups; ++g) {
    FRUGAL_ASSIGN_OR_RETURN(
        WeightView v, quant::slice_rows(a.wo_a, g * cfg.o_lora_rank, (g + 1) * cfg.o_lora_rank));
    a.wo_a_groups.push_back(v);
  }
  const int64_t ratio = cfg.compress_ratio(block);
  if (ratio == 0) return ok_status();
  FRUGAL_RETURN_IF_ERROR(bind_compressor(b, block, false, ratio, cfg.head_dim, a.compressor));
  if (ratio != 4) return ok_status();
  FRUGAL_ASSIGN_OR_RETURN(a.indexer.wq_b, b.linear(TensorKind::kIndexerWqB, block));
  FRUGAL_ASSIGN_OR_RETURN(a.indexer.weights_proj, b.linear(TensorKind::kIndexerWeightsProj, block));
  return bind_compressor(b, block, true, 4, cfg.index_head_dim, a.indexer.compressor);
}

// A streamed routed expert: located only (its bytes are read and checked when first needed).
Status locate_expert(Binder& b, int32_t block, int32_t e, ExpertLocation& x) {
  FRUGAL_ASSIGN_OR_RETURN(x.w1, b.locate(TensorKind::kExpertW1, block, e));
  FRUGAL_ASSIGN_OR_RETURN(x.w2, b.locate(TensorKind::kExpertW2, block, e));
  FRUGAL_ASSIGN_OR_RETURN(x.w3, b.locate(TensorKind::kExpertW3, block, e));
  return ok_status();
}

Status bind_expert(Binder& b, int32_t block, int32_t e, bool shared, ExpertWeights& x) {
  const TensorKind k1 = shared ? TensorKind::kSharedW1 : TensorKind::kExpertW1;
  const TensorKind k2 = shared ? TensorKind::kSharedW2 : TensorKind::kExpertW2;
  const TensorKind k3 = shared ? TensorKind::kSharedW3 : TensorKind::kExpertW3;
  FRUGAL_ASSIGN_OR_RETURN(x.w1, b.linear(k1, block, e));
  FRUGAL_ASSIGN_OR_RETURN(x.w2, b.linear(k2, block, e));
  FRUGAL_ASSIGN_OR_RETURN(x.w3, b.linear(k3, block, e));
  return ok_status();
}

// mirrors MoE.__init__ + Gate.__init__
Status bind_moe(Binder& b, const DeepSeekV4Config& cfg, const LoadOptions& opt, int32_t block,
                MoeWeights& m) {
  FRUGAL_ASSIGN_OR_RETURN(m.gate, b.linear(TensorKind::kGateWeight, block));
  if (cfg.is_hash_layer(block)) {
    FRUGAL_ASSIGN_OR_RETURN(m.tid2eid, b.expert_ids(block, cfg.n_routed_experts));
  } else {
    FRUGAL_ASSIGN_OR_RETURN(m.bias, b.f32(TensorKind::kGateBias, block));
  }
  m.experts.resize(static_cast<size_t>(cfg.n_routed_experts));
  if (opt.stream_experts) m.locations.resize(m.experts.size());
  for (int32_t e = 0; e < static_cast<int32_t>(cfg.n_routed_experts); ++e) {
    const size_t i = static_cast<size_t>(e);
    if (opt.shard != nullptr && !opt.shard->holds_expert(e)) continue;  // another process's
    FRUGAL_RETURN_IF_ERROR(opt.stream_experts ? locate_expert(b, block, e, m.locations[i])
                                              : bind_expert(b, block, e, false, m.experts[i]));
  }
  FRUGAL_RETURN_IF_ERROR(bind_expert(b, block, -1, true, m.shared));
  m.shared_swiglu_limit = opt.shared_expert_clamp == SharedExpertClamp::kClamped
                              ? static_cast<float>(cfg.swiglu_limit)
                              : 0.0f;
  return ok_status();
}

Status bind_hc(Binder& b, TensorKind fn, int32_t block, HcWeights& hc) {
  FRUGAL_ASSIGN_OR_RETURN(hc.fn, b.f32(fn, block));
  FRUGAL_ASSIGN_OR_RETURN(hc.base, b.f32(static_cast<TensorKind>(static_cast<int>(fn) + 1), block));
  FRUGAL_ASSIGN_OR_RETURN(hc.scale,
                          b.f32(static_cast<TensorKind>(static_cast<int>(fn) + 2), block));
  return ok_status();
}

// mirrors Block.__init__ / MTPBlock.__init__
Status bind_block(Binder& b, const DeepSeekV4Config& cfg, const LoadOptions& opt, int32_t block,
                  BlockWeights& w) {
  FRUGAL_ASSIGN_OR_RETURN(w.attn_norm, b.f32(TensorKind::kAttnNorm, block));
  FRUGAL_ASSIGN_OR_RETURN(w.ffn_norm, b.f32(TensorKind::kFfnNorm, block));
  FRUGAL_RETURN_IF_ERROR(bind_hc(b, TensorKind::kHcAttnFn, block, w.hc_attn));
  FRUGAL_RETURN_IF_ERROR(bind_hc(b, TensorKind::kHcFfnFn, block, w.hc_ffn));
  FRUGAL_RETURN_IF_ERROR(bind_attention(b, cfg, block, w.attn));
  FRUGAL_RETURN_IF_ERROR(bind_moe(b, cfg, opt, block, w.ffn));
  if (!cfg.is_mtp_block(block)) return ok_status();
  FRUGAL_ASSIGN_OR_RETURN(w.mtp.e_proj, b.linear(TensorKind::kMtpEProj, block));
  FRUGAL_ASSIGN_OR_RETURN(w.mtp.h_proj, b.linear(TensorKind::kMtpHProj, block));
  FRUGAL_ASSIGN_OR_RETURN(w.mtp.enorm, b.f32(TensorKind::kMtpEnorm, block));
  FRUGAL_ASSIGN_OR_RETURN(w.mtp.hnorm, b.f32(TensorKind::kMtpHnorm, block));
  FRUGAL_ASSIGN_OR_RETURN(w.mtp.norm, b.f32(TensorKind::kNorm, block));
  return bind_hc(b, TensorKind::kHcHeadFn, block, w.mtp.hc_head);
}

bool is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

Status check_model_supported(const DeepSeekV4Config& c) {
  auto fail = [](const std::string& what) {
    return unsupported("config.json: " + what + " is not supported by the V4 forward pass");
  };
  if (c.rope_head_dim <= 0 || c.rope_head_dim % 2 != 0 || c.rope_head_dim > c.head_dim)
    return fail("qk_rope_head_dim " + std::to_string(c.rope_head_dim) +
                " (must be even and <= head_dim)");
  if (c.nope_head_dim() % 64 != 0)
    return fail("head_dim - qk_rope_head_dim = " + std::to_string(c.nope_head_dim()) +
                " (the KV FP8 simulation needs a multiple of 64)");
  if (!is_pow2(c.index_head_dim) || c.index_head_dim % 32 != 0 ||
      c.index_head_dim < c.rope_head_dim)
    return fail("index_head_dim " + std::to_string(c.index_head_dim) +
                " (must be a power of two, a multiple of 32 and >= qk_rope_head_dim)");
  if (c.n_shared_experts != 1)
    return fail("n_shared_experts " + std::to_string(c.n_shared_experts) + " (must be 1)");
  if (c.o_groups <= 0 || (c.n_heads * c.head_dim) % c.o_groups != 0)
    return fail("o_groups " + std::to_string(c.o_groups));
  if (c.n_activated_experts > c.n_routed_experts || c.n_activated_experts <= 0 ||
      c.n_activated_experts > 64)
    return fail("num_experts_per_tok " + std::to_string(c.n_activated_experts));
  for (size_t i = 0; i < c.compress_ratios.size(); ++i) {
    const int64_t r = c.compress_ratios[i];
    if (r != 0 && r != 4 && r <= 4)
      return fail("compress_ratios[" + std::to_string(i) + "] = " + std::to_string(r));
  }
  return ok_status();
}

Result<std::unique_ptr<ModelWeights>> load_weights(const std::string& dir,
                                                   const LoadOptions& options) {
  auto w = std::make_unique<ModelWeights>();
  FRUGAL_ASSIGN_OR_RETURN(w->config, load_config(dir));
  FRUGAL_RETURN_IF_ERROR(check_model_supported(w->config));
  FRUGAL_ASSIGN_OR_RETURN(w->checkpoint, format::Checkpoint::open(dir));
  const TensorTable table(w->config);
  CheckOptions check;
  check.scan_values = options.scan_values;
  check.scan_routed_experts = !options.stream_experts;
  w->streamed_experts = options.stream_experts;
  w->shard = options.shard != nullptr ? *options.shard : whole_model(w->config);
  check.shard = &w->shard;
  FRUGAL_RETURN_IF_ERROR(check_checkpoint(table, w->checkpoint, check));

  // A process of a parallel run never touches the tensors another one holds: their pages leave
  // its mappings before anything is bound (runs of adjacent tensors merged; a page shared with a
  // tensor it holds stays).
  if (!w->shard.whole()) {
    std::vector<std::pair<const std::byte*, const std::byte*>> others;
    for (const TensorSpec& spec : table.entries()) {
      const format::TensorInfo* t = w->checkpoint.find(spec.name);
      if (t == nullptr || holds_tensor(w->shard, spec) || t->data.empty()) continue;
      others.emplace_back(t->data.data(), t->data.data() + t->data.size());
    }
    std::sort(others.begin(), others.end());
    for (size_t i = 0; i < others.size();) {
      const std::byte* begin = others[i].first;
      const std::byte* end = others[i].second;
      for (++i; i < others.size() && others[i].first == end; ++i) end = others[i].second;
      FRUGAL_RETURN_IF_ERROR(unmap_file_pages(begin, static_cast<uint64_t>(end - begin)));
    }
  }

  // What may be copied: the tensors this process holds (not the routed experts when they stream).
  uint64_t copy_budget = 64 * static_cast<uint64_t>(w->checkpoint.size());
  for (const TensorSpec& spec : table.entries()) {
    if (!holds_tensor(w->shard, spec)) continue;
    if (options.stream_experts && spec.expert != kNoExpert) continue;
    if (options.stream_embed && spec.kind == TensorKind::kEmbed) continue;
    const format::TensorInfo* t = w->checkpoint.find(spec.name);
    copy_budget += t != nullptr ? t->size : 0;
  }
  Binder b(table, *w, options.placement, copy_budget, options.progress);
  const DeepSeekV4Config& cfg = w->config;
  const Shard& shard = w->shard;
  if (shard.holds_embedding()) {
    FRUGAL_ASSIGN_OR_RETURN(w->embed_ref, b.locate(TensorKind::kEmbed, kNoBlock));
    w->streamed_embed = options.stream_embed;
    if (!options.stream_embed) {
      FRUGAL_ASSIGN_OR_RETURN(w->embed, b.linear(TensorKind::kEmbed, kNoBlock));
    }
  }
  if (shard.holds_head()) {
    FRUGAL_ASSIGN_OR_RETURN(w->head, b.linear(TensorKind::kHead, kNoBlock));
    FRUGAL_ASSIGN_OR_RETURN(w->norm, b.f32(TensorKind::kNorm, kNoBlock));
    FRUGAL_RETURN_IF_ERROR(bind_hc(b, TensorKind::kHcHeadFn, kNoBlock, w->hc_head));
  }
  w->blocks.resize(static_cast<size_t>(cfg.n_blocks()));
  for (int32_t blk = 0; blk < static_cast<int32_t>(cfg.n_blocks()); ++blk) {
    if (!shard.holds_block(blk)) continue;  // another stage's
    Status s = bind_block(b, cfg, options, blk, w->blocks[static_cast<size_t>(blk)]);
    if (!s.ok()) return s.with_context("binding block " + std::to_string(blk));
  }
  FRUGAL_LOG_INFO(
      "v4: bound %zu tensors from %s (%llu bytes copied at load, %llu bytes of "
      "linear weights placed in huge-page memory)",
      table.entries().size(), dir.c_str(), static_cast<unsigned long long>(w->owned_stats.bytes()),
      static_cast<unsigned long long>(w->placed_stats.bytes()));
  return w;
}

}  // namespace frugal::v4
