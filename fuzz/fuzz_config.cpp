// libFuzzer target for the DeepSeek-V4 config.json parser. Any input must give a config or an
// error with a message, never a crash. An accepted config must survive a round trip through
// config_to_json unchanged, and (when small enough to build quickly) its tensor table must have
// unique names that look up to themselves; a broken promise traps.
//
// The input is used twice: as config.json text, and as a list of field edits applied to a valid
// small config. Byte-level mutation rarely keeps JSON valid, so the edits are what drives the
// field validation rules (ranges, cross-field checks, nested objects) with near-valid configs.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "model/v4/config.h"
#include "model/v4/tensor_table.h"

namespace {

using frugal::v4::DeepSeekV4Config;
using nlohmann::json;

void require(bool cond) {
  if (!cond) __builtin_trap();
}

void check_table(const DeepSeekV4Config& c) {
  // Entries grow with blocks x experts; bound the work per input.
  if (c.n_blocks() * (c.n_routed_experts + 8) > 4096) return;
  if (c.vocab_size * c.dim > (int64_t{1} << 26)) return;
  const frugal::v4::TensorTable table(c);
  std::set<std::string_view> names;
  for (const auto& spec : table.entries()) {
    require(names.insert(spec.name).second);
    require(table.find(spec.kind, spec.block, spec.expert) == &spec);
    require(table.find_name(spec.name) == &spec);
    for (int64_t d : spec.shape) require(d > 0);
  }
}

void check_text(std::string_view text) {
  auto parsed = frugal::v4::parse_config(text, "fuzz/config.json");
  if (!parsed.ok()) {
    require(!parsed.status().message().empty());
    return;
  }
  const DeepSeekV4Config& c = *parsed;
  require(frugal::v4::validate_config(c).ok());
  auto again = frugal::v4::parse_config(frugal::v4::config_to_json(c), "roundtrip");
  require(again.ok() && *again == c);
  check_table(c);
}

// A valid small config with every block kind (window, CSA, HCA, MTP) and hash routing.
json base_config() {
  DeepSeekV4Config c;
  c.vocab_size = 320, c.dim = 256, c.n_layers = 4, c.n_mtp_layers = 1, c.n_heads = 4;
  c.head_dim = 128, c.rope_head_dim = 64, c.q_lora_rank = 96, c.o_groups = 2, c.o_lora_rank = 64;
  c.window_size = 16, c.compress_ratios = {0, 4, 128, 0, 0}, c.compress_rope_theta = 160000;
  c.rope_factor = 16, c.original_seq_len = 64, c.index_n_heads = 2, c.index_head_dim = 64;
  c.index_topk = 4, c.hc_mult = 4, c.hc_sinkhorn_iters = 20, c.n_routed_experts = 4;
  c.n_shared_experts = 1, c.n_activated_experts = 2, c.moe_inter_dim = 96, c.n_hash_layers = 2;
  c.route_scale = 1.5, c.swiglu_limit = 10, c.max_position_embeddings = 4096;
  c.bos_token_id = 0, c.eos_token_ids = {1};
  return json::parse(frugal::v4::config_to_json(c));
}

// Picks a value of some JSON type from the input bytes.
json make_value(const uint8_t*& p, const uint8_t* end) {
  auto next = [&]() -> uint8_t { return p < end ? *p++ : 0; };
  const uint8_t kind = next() % 10;
  const uint8_t b = next();
  static const int64_t kInts[] = {0,
                                  1,
                                  2,
                                  3,
                                  4,
                                  5,
                                  7,
                                  8,
                                  16,
                                  32,
                                  63,
                                  64,
                                  96,
                                  128,
                                  256,
                                  512,
                                  -1,
                                  1 << 20,
                                  int64_t{1} << 40,
                                  INT64_MAX,
                                  129280,
                                  4096};
  static const char* kStrings[] = {"yarn",
                                   "fp8",
                                   "fp4",
                                   "e4m3",
                                   "ue8m0",
                                   "dynamic",
                                   "silu",
                                   "noaux_tc",
                                   "sigmoid",
                                   "softmax",
                                   "sqrtsoftplus",
                                   "deepseek_v4",
                                   "DeepseekV4ForCausalLM",
                                   "",
                                   "linear"};
  switch (kind) {
    case 0:
      return kInts[b % std::size(kInts)];
    case 1:
      return static_cast<int64_t>(b) - 16;
    case 2:
      return static_cast<double>(b) / 16.0 - 1.0;
    case 3:
      return kStrings[b % std::size(kStrings)];
    case 4:
      return (b & 1) != 0;
    case 5:
      return nullptr;
    case 6: {
      json a = json::array();
      for (int i = 0; i < b % 8; ++i) a.push_back(kInts[next() % std::size(kInts)]);
      return a;
    }
    case 7:
      return json::object({{kStrings[b % std::size(kStrings)], next()}});
    case 8:
      return static_cast<uint64_t>(UINT64_MAX - b);
    default:
      return 1e300 * (b % 3);
  }
}

void check_edits(const uint8_t* data, size_t size) {
  static const json kBase = base_config();
  static const std::vector<std::string> kKeys = [] {
    std::vector<std::string> keys;
    for (auto it = kBase.begin(); it != kBase.end(); ++it) keys.push_back(it.key());
    for (const char* k : {"use_cache", "torch_dtype", "hidden_act", "attention_bias",
                          "dspark_block_size", "unknown_field"})
      keys.push_back(k);
    return keys;
  }();
  json j = kBase;
  const uint8_t* p = data;
  const uint8_t* end = data + std::min<size_t>(size, 64);
  while (end - p >= 2) {
    const uint8_t op = *p++;
    const std::string& key = kKeys[*p++ % kKeys.size()];
    json* target = &j;
    if ((op & 3) == 3 && j.contains(key) && j[key].is_object() && !j[key].empty() && p < end) {
      auto it = j[key].begin();
      const size_t at = *p++ % j[key].size();
      std::advance(it, static_cast<std::ptrdiff_t>(at));
      target = &it.value();
      if ((op & 4) != 0) {
        j[key].erase(it.key());
        continue;
      }
      *target = make_value(p, end);
    } else if ((op & 3) == 2) {
      j.erase(key);
    } else if ((op & 3) == 1 && j.contains(key) && j[key].is_array() && !j[key].empty() &&
               p < end) {
      const size_t at = *p++ % j[key].size();  // read before make_value advances p
      j[key][at] = make_value(p, end);
    } else {
      j[key] = make_value(p, end);
    }
  }
  check_text(j.dump());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_text(std::string_view(reinterpret_cast<const char*>(data), size));
  check_edits(data, size);
  return 0;
}
