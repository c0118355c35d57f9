#include "engine/memory_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "model/v4/tensor_table.h"

namespace frugal::engine {
namespace {

using v4::TensorKind;

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

// Bytes of `n` entries stored in whole pages (kv/paged.h), each page an allocation rounded up to
// 64 bytes (core/memory.h, the aligned_alloc path).
uint64_t paged_bytes(int64_t n, uint64_t entry_bytes, int64_t page_entries) {
  if (n <= 0 || entry_bytes == 0) return 0;
  const uint64_t pages = static_cast<uint64_t>((n + page_entries - 1) / page_entries);
  return pages * round_up(entry_bytes * static_cast<uint64_t>(page_entries), 64);
}

bool is_routed_expert(TensorKind k) {
  return k == TensorKind::kExpertW1 || k == TensorKind::kExpertW1Scale ||
         k == TensorKind::kExpertW2 || k == TensorKind::kExpertW2Scale ||
         k == TensorKind::kExpertW3 || k == TensorKind::kExpertW3Scale;
}

uint64_t fixed_state(const v4::DeepSeekV4Config& c, kv::CacheFormat f) {
  const KvBytes window = kv_bytes_at(c, f, c.window_size);
  return window.window + window.compressor_state;
}

}  // namespace

const char* weight_group(const v4::TensorSpec& s, int64_t n_layers) {
  if (s.block != v4::kNoBlock && s.block >= n_layers) return "mtp";
  switch (s.kind) {
    case TensorKind::kEmbed:
      return "embed";
    case TensorKind::kHead:
      return "head";
    case TensorKind::kExpertW1:
    case TensorKind::kExpertW1Scale:
    case TensorKind::kExpertW2:
    case TensorKind::kExpertW2Scale:
    case TensorKind::kExpertW3:
    case TensorKind::kExpertW3Scale:
      return "routed_experts";
    case TensorKind::kSharedW1:
    case TensorKind::kSharedW1Scale:
    case TensorKind::kSharedW2:
    case TensorKind::kSharedW2Scale:
    case TensorKind::kSharedW3:
    case TensorKind::kSharedW3Scale:
      return "shared_experts";
    case TensorKind::kGateWeight:
    case TensorKind::kGateBias:
    case TensorKind::kGateTid2eid:
      return "router";
    case TensorKind::kCompressorWkv:
    case TensorKind::kCompressorWgate:
    case TensorKind::kCompressorApe:
    case TensorKind::kCompressorNorm:
      return "compressor";
    case TensorKind::kIndexerWqB:
    case TensorKind::kIndexerWqBScale:
    case TensorKind::kIndexerWeightsProj:
    case TensorKind::kIndexerCompressorWkv:
    case TensorKind::kIndexerCompressorWgate:
    case TensorKind::kIndexerCompressorApe:
    case TensorKind::kIndexerCompressorNorm:
      return "indexer";
    case TensorKind::kHcHeadFn:
    case TensorKind::kHcHeadBase:
    case TensorKind::kHcHeadScale:
    case TensorKind::kHcAttnFn:
    case TensorKind::kHcAttnBase:
    case TensorKind::kHcAttnScale:
    case TensorKind::kHcFfnFn:
    case TensorKind::kHcFfnBase:
    case TensorKind::kHcFfnScale:
      return "hyper_connections";
    case TensorKind::kNorm:
    case TensorKind::kAttnNorm:
    case TensorKind::kFfnNorm:
      return "norms";
    default:
      return "attention";  // wq_a/b, wkv, wo_a/b with scales, q/kv norms, attn_sink
  }
}

double kv_bytes_per_token(const v4::DeepSeekV4Config& c, kv::CacheFormat format) {
  const double entry =
      static_cast<double>(kv::EntryCodec(format, c.head_dim, c.rope_head_dim).bytes());
  const double key = static_cast<double>(kv::IndexKeyCodec(format, c.index_head_dim).bytes());
  double b = 0;
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const int64_t r = c.compress_ratio(i);
    if (r == 0) continue;
    b += entry / static_cast<double>(r);
    if (r == 4) b += key / 4.0;
  }
  return b;
}

KvBytes kv_bytes_at(const v4::DeepSeekV4Config& c, kv::CacheFormat format, int64_t tokens,
                    int64_t page_entries) {
  return kv_bytes_at(c, format, tokens, v4::whole_model(c), page_entries);
}

KvBytes kv_bytes_at(const v4::DeepSeekV4Config& c, kv::CacheFormat format, int64_t tokens,
                    const v4::Shard& shard, int64_t page_entries) {
  const uint64_t entry = kv::EntryCodec(format, c.head_dim, c.rope_head_dim).bytes();
  const uint64_t key = kv::IndexKeyCodec(format, c.index_head_dim).bytes();
  KvBytes k;
  for (int64_t i = 0; i < c.n_blocks(); ++i) {
    if (!shard.holds_block(i)) continue;
    const int64_t r = c.compress_ratio(i);
    k.window += paged_bytes(std::min(tokens, c.window_size), entry, page_entries);
    if (r == 0) continue;
    k.compressed += paged_bytes(tokens / r, entry, page_entries);
    // Compressor state (kv/v4_cache.h): kv + score, [c*ratio, c*head_dim] f32 each (c = 2 for
    // the overlapping CSA compressor), plus [8, 2*index_head_dim] x 2 for the indexer's.
    const uint64_t coff = r == 4 ? 2 : 1;
    uint64_t floats = 2 * (coff * r) * (coff * c.head_dim);
    if (r == 4) {
      k.index_keys += paged_bytes(tokens / 4, key, page_entries);
      floats += 2 * 8 * (2 * c.index_head_dim);
    }
    k.compressor_state += round_up(floats * sizeof(float), 64);
  }
  return k;
}

MemoryPlan plan_memory(const v4::DeepSeekV4Config& c, int64_t ctx) {
  MemoryPlan p;
  p.ctx = ctx;
  p.n_layers = c.n_layers;
  p.decode_bytes_per_token = decode_weight_bytes_per_token(c);
  p.prefill_flops_per_token = prefill_matmul_flops_per_token(c);
  p.spec = spec_cost_by_bytes(c, 2);
  const v4::TensorTable table(c);
  for (const v4::TensorSpec& s : table.entries()) {
    const uint64_t b = s.bytes();
    p.weights_bytes += b;
    p.weights_by_dtype[std::string(dtype_name(s.dtype))] += b;
    p.weights_by_kind[weight_group(s, c.n_layers)] += b;
  }
  p.kv_bytes_per_token_fp8 = kv_bytes_per_token(c, kv::CacheFormat::kFp8);
  p.kv_bytes_per_token_bf16 = kv_bytes_per_token(c, kv::CacheFormat::kBf16);
  p.kv_fp8 = kv_bytes_at(c, kv::CacheFormat::kFp8, ctx);
  p.kv_bf16 = kv_bytes_at(c, kv::CacheFormat::kBf16, ctx);
  p.fixed_state_bytes_fp8 = fixed_state(c, kv::CacheFormat::kFp8);
  p.fixed_state_bytes_bf16 = fixed_state(c, kv::CacheFormat::kBf16);
  const double layers = static_cast<double>(c.n_layers);
  p.mla_bytes_per_token = layers * (656.0 + 132.0);
  p.mha_bytes_per_token = layers * 2.0 * static_cast<double>(c.n_heads * c.head_dim) * 2.0;
  return p;
}

uint64_t decode_weight_bytes_per_token(const v4::DeepSeekV4Config& c) {
  const v4::TensorTable table(c);
  uint64_t other = 0;
  std::vector<uint64_t> expert_bytes(static_cast<size_t>(c.n_layers), 0);  // expert 0 of a block
  for (const v4::TensorSpec& s : table.entries()) {
    if (s.block != v4::kNoBlock && s.block >= c.n_layers) continue;  // MTP: not run to decode
    if (s.kind == TensorKind::kEmbed) {
      other += s.bytes() / static_cast<uint64_t>(c.vocab_size);  // one row
    } else if (s.kind == TensorKind::kGateTid2eid) {
      other += s.bytes() / static_cast<uint64_t>(c.vocab_size);
    } else if (is_routed_expert(s.kind)) {
      if (s.expert == 0) expert_bytes[static_cast<size_t>(s.block)] += s.bytes();
    } else {
      other += s.bytes();
    }
  }
  uint64_t total = other;
  for (uint64_t e : expert_bytes) total += static_cast<uint64_t>(c.n_activated_experts) * e;
  return total;
}

uint64_t mtp_step_weight_bytes(const v4::DeepSeekV4Config& c) {
  if (c.n_mtp_layers < 1) return 0;
  const v4::TensorTable table(c);
  uint64_t total = 0;
  for (const v4::TensorSpec& s : table.entries()) {
    if (s.kind == TensorKind::kEmbed) {
      total += s.bytes() / static_cast<uint64_t>(c.vocab_size);  // embed(next): one row
    } else if (s.kind == TensorKind::kHead) {
      total += s.bytes();
    } else if (s.block == c.n_layers) {
      if (s.kind == TensorKind::kGateTid2eid) {
        total += s.bytes() / static_cast<uint64_t>(c.vocab_size);
      } else if (!is_routed_expert(s.kind)) {
        total += s.bytes();
      } else if (s.expert == 0) {
        total += static_cast<uint64_t>(c.n_activated_experts) * s.bytes();
      }
    }
  }
  return total;
}

double forward_weight_bytes(const v4::DeepSeekV4Config& c, int64_t n) {
  const double per_token = static_cast<double>(decode_weight_bytes_per_token(c));
  if (c.n_routed_experts < 1 || c.n_activated_experts < 1) return per_token;
  // decode_weight_bytes_per_token counts n_activated_experts per block; scale that part.
  const v4::TensorTable table(c);
  double expert = 0;  // one expert of every main block
  for (const v4::TensorSpec& s : table.entries()) {
    if (is_routed_expert(s.kind) && s.expert == 0 && s.block < c.n_layers) {
      expert += static_cast<double>(s.bytes());
    }
  }
  const double e = static_cast<double>(c.n_routed_experts);
  const double k = static_cast<double>(c.n_activated_experts);
  const double distinct = e * (1.0 - std::pow(1.0 - k / e, static_cast<double>(n)));
  return per_token + (distinct - k) * expert;
}

SpecCostModel spec_cost_by_bytes(const v4::DeepSeekV4Config& c, int32_t k) {
  SpecCostModel m;
  if (c.n_mtp_layers < 1) return m;
  const double one = forward_weight_bytes(c, 1);
  m.verify.push_back(0.0);
  for (int32_t n = 1; n <= k + 1; ++n) m.verify.push_back(forward_weight_bytes(c, n) / one);
  m.mtp = static_cast<double>(mtp_step_weight_bytes(c)) / one;
  return m;
}

double projected_spec_speedup(const SpecCostModel& m, double acceptance, int32_t k) {
  if (k < 1 || k + 1 >= static_cast<int32_t>(m.verify.size())) return 0.0;
  double tokens = 1.0, a = 1.0;
  for (int32_t j = 1; j <= k; ++j) tokens += (a *= acceptance);
  return tokens / (m.verify[static_cast<size_t>(k) + 1] + k * m.mtp);
}

uint64_t prefill_matmul_flops_per_token(const v4::DeepSeekV4Config& c) {
  using K = TensorKind;
  const v4::TensorTable table(c);
  uint64_t elements = 0;
  for (const v4::TensorSpec& s : table.entries()) {
    if (s.block == v4::kNoBlock || s.block >= c.n_layers) continue;
    uint64_t n = s.numel();
    if (s.dtype == DType::kI8) n *= 2;  // packed e2m1: two weights per byte
    switch (s.kind) {
      case K::kExpertW1:
      case K::kExpertW2:
      case K::kExpertW3:
        if (s.expert < c.n_activated_experts) elements += n;
        break;
      case K::kHcAttnFn:
      case K::kHcFfnFn:
      case K::kWqA:
      case K::kWqB:
      case K::kWkv:
      case K::kWoA:
      case K::kWoB:
      case K::kCompressorWkv:
      case K::kCompressorWgate:
      case K::kIndexerWqB:
      case K::kIndexerWeightsProj:
      case K::kIndexerCompressorWkv:
      case K::kIndexerCompressorWgate:
      case K::kGateWeight:
      case K::kSharedW1:
      case K::kSharedW2:
      case K::kSharedW3:
        elements += n;
        break;
      default:
        break;
    }
  }
  return 2 * elements;
}

std::string memory_plan_text(const MemoryPlan& p) {
  std::string out;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof(line), fmt, args...);
    out += line;
  };
  add("weights: %s (%llu B)\n", format_bytes(p.weights_bytes).c_str(),
      static_cast<unsigned long long>(p.weights_bytes));
  for (const auto& [k, v] : p.weights_by_dtype)
    add("  dtype %-18s %s\n", k.c_str(), format_bytes(v).c_str());
  for (const auto& [k, v] : p.weights_by_kind)
    add("  kind  %-18s %s\n", k.c_str(), format_bytes(v).c_str());
  add("kv cache at %lld tokens (%lld layers; page-rounded, MTP blocks included):\n",
      static_cast<long long>(p.ctx), static_cast<long long>(p.n_layers));
  for (int f = 0; f < 2; ++f) {
    const char* name = f == 0 ? "fp8" : "bf16";
    const KvBytes& k = f == 0 ? p.kv_fp8 : p.kv_bf16;
    const double per = f == 0 ? p.kv_bytes_per_token_fp8 : p.kv_bytes_per_token_bf16;
    add("  %-4s %10.2f B/token; total %s (window %s, compressed %s, indexer keys %s, "
        "compressor state %s); fixed per sequence %s\n",
        name, per, format_bytes(k.total()).c_str(), format_bytes(k.window).c_str(),
        format_bytes(k.compressed).c_str(), format_bytes(k.index_keys).c_str(),
        format_bytes(k.compressor_state).c_str(),
        format_bytes(f == 0 ? p.fixed_state_bytes_fp8 : p.fixed_state_bytes_bf16).c_str());
  }
  const double ctx = static_cast<double>(p.ctx);
  add("same context, same dims:\n");
  add("  MLA (V3.2 FP8 656 B + 132 B indexer/layer) %10.0f B/token, %s: %.2fx the fp8 cache\n",
      p.mla_bytes_per_token,
      format_bytes(static_cast<uint64_t>(p.mla_bytes_per_token * ctx)).c_str(),
      p.mla_bytes_per_token / p.kv_bytes_per_token_fp8);
  add("  MHA (bf16 K+V, every head)               %10.0f B/token, %s: %.2fx the fp8 cache\n",
      p.mha_bytes_per_token,
      format_bytes(static_cast<uint64_t>(p.mha_bytes_per_token * ctx)).c_str(),
      p.mha_bytes_per_token / p.kv_bytes_per_token_fp8);
  if (p.activation_bytes > 0)
    add("activation arena: %s\n", format_bytes(p.activation_bytes).c_str());
  if (p.load_copy_bytes > 0) {
    add("copied or repacked at load: %s\n", format_bytes(p.load_copy_bytes).c_str());
  }
  if (p.placed_weight_bytes > 0) {
    add("linear weights in huge-page memory: %s (in place of their mapped pages)\n",
        format_bytes(p.placed_weight_bytes).c_str());
  }
  if (p.spec.verify.size() > 3) {
    add("decode reads %s of weights per token; speculative decoding with the MTP block, by "
        "weight bytes (uniform routing):\n",
        format_bytes(p.decode_bytes_per_token).c_str());
    add("  verify 2 tokens %.2fx, 3 tokens %.2fx, MTP step %.2fx of a decode step\n",
        p.spec.verify[2], p.spec.verify[3], p.spec.mtp);
    for (int32_t k = 1; k <= 2; ++k) {
      add("  k=%d: speedup at acceptance 0.6 / 0.8 / 0.9: %.2fx / %.2fx / %.2fx\n", k,
          projected_spec_speedup(p.spec, 0.6, k), projected_spec_speedup(p.spec, 0.8, k),
          projected_spec_speedup(p.spec, 0.9, k));
    }
  }
  add("total (weights + fp8 kv + activations + load copies): %s\n",
      format_bytes(p.weights_bytes + p.kv_fp8.total() + p.activation_bytes + p.load_copy_bytes)
          .c_str());
  return out;
}

std::string memory_plan_json(const MemoryPlan& p) {
  using nlohmann::json;
  auto kv = [](const KvBytes& k) {
    return json{{"window", k.window},
                {"compressed", k.compressed},
                {"index_keys", k.index_keys},
                {"compressor_state", k.compressor_state},
                {"total", k.total()}};
  };
  json j;
  j["ctx"] = p.ctx;
  j["weights_bytes"] = p.weights_bytes;
  j["weights_by_dtype"] = p.weights_by_dtype;
  j["weights_by_kind"] = p.weights_by_kind;
  j["kv_bytes_per_token"] = {{"fp8", p.kv_bytes_per_token_fp8},
                             {"bf16", p.kv_bytes_per_token_bf16}};
  j["kv_bytes_total"] = {{"fp8", p.kv_fp8.total()}, {"bf16", p.kv_bf16.total()}};
  j["kv_parts"] = {{"fp8", kv(p.kv_fp8)}, {"bf16", kv(p.kv_bf16)}};
  j["fixed_state_bytes"] = p.fixed_state_bytes_fp8;
  j["fixed_state_bytes_by_format"] = {{"fp8", p.fixed_state_bytes_fp8},
                                      {"bf16", p.fixed_state_bytes_bf16}};
  j["activation_bytes"] = p.activation_bytes;
  j["load_copy_bytes"] = p.load_copy_bytes;
  j["placed_weight_bytes"] = p.placed_weight_bytes;
  j["mla_bytes_per_token"] = p.mla_bytes_per_token;
  j["mha_bytes_per_token"] = p.mha_bytes_per_token;
  j["mla_ratio"] = p.mla_bytes_per_token / p.kv_bytes_per_token_fp8;
  j["mha_ratio"] = p.mha_bytes_per_token / p.kv_bytes_per_token_fp8;
  j["decode_weight_bytes_per_token"] = p.decode_bytes_per_token;
  j["prefill_matmul_flops_per_token"] = p.prefill_flops_per_token;
  if (!p.spec.verify.empty()) {
    j["speculative_by_bytes"] = {{"verify_cost", p.spec.verify}, {"mtp_step_cost", p.spec.mtp}};
  }
  return j.dump();
}

}  // namespace frugal::engine
