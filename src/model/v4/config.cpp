// config.json -> DeepSeekV4Config: JSON reading and field types. The rules that relate fields to
// each other live in config_rules.cpp (validate_config), so a config built in code is held to the
// same rules as one read from a file.
#include "model/v4/config.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace frugal::v4 {
namespace {

using nlohmann::json;

std::string_view json_type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number_float()) return "a floating-point number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "a binary value";
}

// A key or value from the file, made safe for a one-line message: control bytes become \xNN and
// the text is cut at 80 bytes, so a hostile config cannot flood the log.
std::string printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 80) out += "...";
  return out;
}

// Keys that HF tooling writes into config.json and that cannot change what the model computes.
// They are type-checked and otherwise ignored. (All appear in the official V4 config.json files.)
struct HarmlessKey {
  std::string_view key;
  json::value_t type;  // number_float also admits integers
};
constexpr HarmlessKey kHarmlessKeys[] = {
    {"transformers_version", json::value_t::string},
    {"torch_dtype", json::value_t::string},
    {"dtype", json::value_t::string},  // newer transformers write "dtype" for "torch_dtype"
    {"use_cache", json::value_t::boolean},
    {"initializer_range", json::value_t::number_float},
    {"attention_dropout", json::value_t::number_float},  // inference never applies dropout
};

// Reads the fields of one JSON object, remembering which keys were consumed so that the
// leftovers can be reported as unknown. Every error names `path` and the dotted field name.
class ObjectReader {
 public:
  ObjectReader(const json& obj, std::string_view path, std::string prefix)
      : obj_(obj), path_(path), prefix_(std::move(prefix)) {}

  Status error(std::string_view key, std::string_view what) const {
    return invalid_argument(std::string(path_) + ": field '" + prefix_ + printable(key) +
                            "': " + std::string(what));
  }
  Status missing(std::string_view key) const {
    return not_found(std::string(path_) + ": missing required field '" + prefix_ +
                     std::string(key) + "'");
  }

  // Returns the value or nullptr when absent (a JSON null counts as absent only if allow_null).
  Result<const json*> get(std::string_view key, bool required, bool allow_null = false) {
    const std::string k(key);
    seen_.insert(k);
    auto it = obj_.find(k);
    if (it == obj_.end() || (allow_null && it->is_null())) {
      if (required) return missing(key);
      return static_cast<const json*>(nullptr);
    }
    return &*it;
  }

  Status read_int(std::string_view key, int64_t* out, bool required) {
    FRUGAL_ASSIGN_OR_RETURN(const json* v, get(key, required));
    if (v == nullptr) return ok_status();
    return to_int(key, *v, out);
  }

  Status to_int(std::string_view key, const json& v, int64_t* out) const {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return error(key, "integer " + std::to_string(u) + " is out of range");
      *out = static_cast<int64_t>(u);
      return ok_status();
    }
    if (v.is_number_integer()) {
      *out = v.get<int64_t>();
      return ok_status();
    }
    return error(key, "expected an integer, found " + std::string(json_type_name(v)));
  }

  Status read_number(std::string_view key, double* out, bool required) {
    FRUGAL_ASSIGN_OR_RETURN(const json* v, get(key, required));
    if (v == nullptr) return ok_status();
    if (!v->is_number())
      return error(key, "expected a number, found " + std::string(json_type_name(*v)));
    *out = v->get<double>();
    return ok_status();
  }

  Status read_bool(std::string_view key, bool* out, bool required) {
    FRUGAL_ASSIGN_OR_RETURN(const json* v, get(key, required));
    if (v == nullptr) return ok_status();
    if (!v->is_boolean())
      return error(key, "expected true or false, found " + std::string(json_type_name(*v)));
    *out = v->get<bool>();
    return ok_status();
  }

  // Reads a string that must be one of `allowed`; returns its index in `allowed`, or -1 if absent.
  Result<int> read_choice(std::string_view key, std::initializer_list<std::string_view> allowed,
                          bool required) {
    FRUGAL_ASSIGN_OR_RETURN(const json* v, get(key, required));
    if (v == nullptr) return -1;
    std::string expected;
    for (std::string_view a : allowed)
      expected += (expected.empty() ? "\"" : " or \"") + std::string(a) + "\"";
    if (!v->is_string())
      return error(key, "expected " + expected + ", found " + std::string(json_type_name(*v)));
    const std::string& s = v->get_ref<const std::string&>();
    int i = 0;
    for (std::string_view a : allowed) {
      if (s == a) return i;
      ++i;
    }
    return Status(StatusCode::kUnsupported, error(key, "unsupported value \"" + printable(s) +
                                                           "\" (expected " + expected + ")")
                                                .message());
  }

  Status read_int_list(std::string_view key, std::vector<int64_t>* out, bool required,
                       bool allow_scalar) {
    FRUGAL_ASSIGN_OR_RETURN(const json* v, get(key, required));
    if (v == nullptr) return ok_status();
    out->clear();
    if (allow_scalar && v->is_number()) {
      int64_t x = 0;
      FRUGAL_RETURN_IF_ERROR(to_int(key, *v, &x));
      out->push_back(x);
      return ok_status();
    }
    if (!v->is_array())
      return error(key, "expected an array of integers, found " + std::string(json_type_name(*v)));
    for (size_t i = 0; i < v->size(); ++i) {
      int64_t x = 0;
      FRUGAL_RETURN_IF_ERROR(to_int(std::string(key) + "[" + std::to_string(i) + "]", (*v)[i], &x));
      out->push_back(x);
    }
    return ok_status();
  }

  // Every key that was neither read nor listed as harmless is an error.
  Status finish(bool allow_harmless) const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (seen_.count(it.key())) continue;
      if (allow_harmless) {
        bool harmless = false;
        for (const HarmlessKey& h : kHarmlessKeys) {
          if (it.key() != h.key) continue;
          harmless = true;
          const bool type_ok = h.type == json::value_t::number_float
                                   ? it->is_number()
                                   : it->type() == h.type || it->is_null();
          if (!type_ok)
            return error(it.key(), "unexpected type " + std::string(json_type_name(*it)));
        }
        if (harmless) continue;
      }
      std::string hint;
      if (it.key().rfind("dspark_", 0) == 0)
        hint =
            " (DSpark drafter fields belong to later releases, V4-Flash-0731 / V4.1, which are "
            "not supported)";
      return Status(StatusCode::kUnsupported,
                    std::string(path_) + ": unknown field '" + prefix_ + printable(it.key()) +
                        "': not part of a DeepSeek-V4 config.json" + hint);
    }
    return ok_status();
  }

 private:
  const json& obj_;
  std::string_view path_;
  std::string prefix_;
  std::set<std::string> seen_;
};

// A field that must hold one fixed value if present (it documents a property the engine relies on).
Status expect_fixed_string(ObjectReader& r, std::string_view key, std::string_view value) {
  FRUGAL_ASSIGN_OR_RETURN(int i, r.read_choice(key, {value}, /*required=*/false));
  (void)i;
  return ok_status();
}

Status read_quantization(ObjectReader& top, DeepSeekV4Config* c, std::string_view path) {
  FRUGAL_ASSIGN_OR_RETURN(const json* q, top.get("quantization_config", /*required=*/true));
  if (!q->is_object())
    return top.error("quantization_config",
                     "expected an object, found " + std::string(json_type_name(*q)));
  ObjectReader r(*q, path, "quantization_config.");
  FRUGAL_ASSIGN_OR_RETURN(int m, r.read_choice("quant_method", {"fp8"}, true));
  FRUGAL_ASSIGN_OR_RETURN(int f, r.read_choice("fmt", {"e4m3"}, false));
  FRUGAL_ASSIGN_OR_RETURN(int a, r.read_choice("activation_scheme", {"dynamic"}, false));
  FRUGAL_ASSIGN_OR_RETURN(int s, r.read_choice("scale_fmt", {"ue8m0"}, false));
  (void)m, (void)f, (void)a;
  c->scale_fmt = s == 0 ? ScaleFmt::kUe8m0 : ScaleFmt::kNone;
  std::vector<int64_t> block;
  FRUGAL_RETURN_IF_ERROR(r.read_int_list("weight_block_size", &block, true, false));
  if (block != std::vector<int64_t>{128, 128})
    return Status(StatusCode::kUnsupported, r.error("weight_block_size",
                                                    "expected [128, 128] (FP8 weights with 128x128 "
                                                    "block scales)")
                                                .message());
  return r.finish(/*allow_harmless=*/false);
}

// rope_scaling absent or null: YaRN off (reference original_seq_len = 0).
Status read_rope_scaling(ObjectReader& top, DeepSeekV4Config* c, std::string_view path) {
  FRUGAL_ASSIGN_OR_RETURN(const json* rs, top.get("rope_scaling", false, /*allow_null=*/true));
  if (rs == nullptr) return ok_status();
  if (!rs->is_object())
    return top.error("rope_scaling",
                     "expected an object, found " + std::string(json_type_name(*rs)));
  ObjectReader r(*rs, path, "rope_scaling.");
  FRUGAL_ASSIGN_OR_RETURN(int type, r.read_choice("type", {"yarn"}, false));
  FRUGAL_ASSIGN_OR_RETURN(int rope_type, r.read_choice("rope_type", {"yarn"}, false));
  if (type < 0 && rope_type < 0) return r.missing("type");
  FRUGAL_RETURN_IF_ERROR(r.read_number("factor", &c->rope_factor, true));
  FRUGAL_RETURN_IF_ERROR(
      r.read_int("original_max_position_embeddings", &c->original_seq_len, true));
  FRUGAL_RETURN_IF_ERROR(r.read_number("beta_fast", &c->beta_fast, false));
  FRUGAL_RETURN_IF_ERROR(r.read_number("beta_slow", &c->beta_slow, false));
  return r.finish(/*allow_harmless=*/false);
}

Status read_identity(ObjectReader& r) {
  FRUGAL_ASSIGN_OR_RETURN(const json* arch, r.get("architectures", true));
  if (!arch->is_array() || arch->size() != 1 || !(*arch)[0].is_string())
    return r.error("architectures", "expected [\"DeepseekV4ForCausalLM\"]");
  const std::string& a = (*arch)[0].get_ref<const std::string&>();
  if (a != "DeepseekV4ForCausalLM")
    return Status(StatusCode::kUnsupported,
                  r.error("architectures", "unsupported architecture \"" + printable(a) +
                                               "\" (expected \"DeepseekV4ForCausalLM\")")
                      .message());
  FRUGAL_ASSIGN_OR_RETURN(int mt, r.read_choice("model_type", {"deepseek_v4"}, true));
  (void)mt;
  return ok_status();
}

Status read_fields(ObjectReader& r, DeepSeekV4Config* c, std::string_view path) {
  FRUGAL_RETURN_IF_ERROR(read_identity(r));
  struct IntField {
    std::string_view key;
    int64_t* out;
    bool required;
  };
  const IntField ints[] = {
      {"vocab_size", &c->vocab_size, true},
      {"hidden_size", &c->dim, true},
      {"num_hidden_layers", &c->n_layers, true},
      {"num_nextn_predict_layers", &c->n_mtp_layers, false},
      {"num_attention_heads", &c->n_heads, true},
      {"head_dim", &c->head_dim, true},
      {"qk_rope_head_dim", &c->rope_head_dim, true},
      {"q_lora_rank", &c->q_lora_rank, true},
      {"o_groups", &c->o_groups, true},
      {"o_lora_rank", &c->o_lora_rank, true},
      {"sliding_window", &c->window_size, true},
      {"index_n_heads", &c->index_n_heads, true},
      {"index_head_dim", &c->index_head_dim, true},
      {"index_topk", &c->index_topk, true},
      {"hc_mult", &c->hc_mult, true},
      {"hc_sinkhorn_iters", &c->hc_sinkhorn_iters, true},
      {"n_routed_experts", &c->n_routed_experts, true},
      {"n_shared_experts", &c->n_shared_experts, true},
      {"num_experts_per_tok", &c->n_activated_experts, true},
      {"moe_intermediate_size", &c->moe_inter_dim, true},
      {"num_hash_layers", &c->n_hash_layers, false},
      {"max_position_embeddings", &c->max_position_embeddings, true},
  };
  for (const IntField& f : ints) FRUGAL_RETURN_IF_ERROR(r.read_int(f.key, f.out, f.required));

  struct NumberField {
    std::string_view key;
    double* out;
    bool required;
  };
  const NumberField numbers[] = {
      {"rope_theta", &c->rope_theta, true},
      {"compress_rope_theta", &c->compress_rope_theta, true},
      {"hc_eps", &c->hc_eps, false},
      {"routed_scaling_factor", &c->route_scale, true},
      {"swiglu_limit", &c->swiglu_limit, false},
      {"rms_norm_eps", &c->norm_eps, true},
  };
  for (const NumberField& f : numbers)
    FRUGAL_RETURN_IF_ERROR(r.read_number(f.key, f.out, f.required));

  FRUGAL_RETURN_IF_ERROR(r.read_int_list("compress_ratios", &c->compress_ratios, true, false));
  FRUGAL_RETURN_IF_ERROR(r.read_bool("norm_topk_prob", &c->norm_topk_prob, false));

  FRUGAL_ASSIGN_OR_RETURN(
      int sf, r.read_choice("scoring_func", {"softmax", "sigmoid", "sqrtsoftplus"}, true));
  c->score_func = static_cast<ScoreFunc>(sf);
  FRUGAL_ASSIGN_OR_RETURN(int ed, r.read_choice("expert_dtype", {"fp4", "fp8"}, false));
  // The official V4-Flash / V4-Pro config.json files carry no expert_dtype; their experts are FP4.
  c->expert_dtype = ed == 1 ? ExpertDtype::kFp8 : ExpertDtype::kFp4;

  int64_t bos = 0;
  FRUGAL_ASSIGN_OR_RETURN(const json* bos_v, r.get("bos_token_id", false, /*allow_null=*/true));
  if (bos_v != nullptr) {
    FRUGAL_RETURN_IF_ERROR(r.to_int("bos_token_id", *bos_v, &bos));
    c->bos_token_id = bos;
  }
  FRUGAL_ASSIGN_OR_RETURN(const json* eos_v, r.get("eos_token_id", false, /*allow_null=*/true));
  if (eos_v != nullptr)
    FRUGAL_RETURN_IF_ERROR(r.read_int_list("eos_token_id", &c->eos_token_ids, false, true));
  FRUGAL_ASSIGN_OR_RETURN(const json* pad_v, r.get("pad_token_id", false, /*allow_null=*/true));
  if (pad_v != nullptr) {
    int64_t pad = 0;
    FRUGAL_RETURN_IF_ERROR(r.to_int("pad_token_id", *pad_v, &pad));
    c->pad_token_id = pad;
  }

  // Fields with one admissible value: they state properties of the architecture that the engine
  // hard-codes (MQA with one KV head, SwiGLU, no biases, untied head, noaux_tc routing).
  int64_t kv_heads = 1;
  FRUGAL_RETURN_IF_ERROR(r.read_int("num_key_value_heads", &kv_heads, false));
  if (kv_heads != 1)
    return r.error("num_key_value_heads", "expected 1 (V4 attention shares one KV vector), found " +
                                              std::to_string(kv_heads));
  bool flag = false;
  FRUGAL_RETURN_IF_ERROR(r.read_bool("attention_bias", &flag, false));
  if (flag) return r.error("attention_bias", "expected false (V4 linear layers have no bias)");
  FRUGAL_RETURN_IF_ERROR(r.read_bool("tie_word_embeddings", &flag, false));
  if (flag) return r.error("tie_word_embeddings", "expected false (V4 has its own head.weight)");
  FRUGAL_RETURN_IF_ERROR(expect_fixed_string(r, "hidden_act", "silu"));
  FRUGAL_RETURN_IF_ERROR(expect_fixed_string(r, "topk_method", "noaux_tc"));

  FRUGAL_RETURN_IF_ERROR(read_rope_scaling(r, c, path));
  FRUGAL_RETURN_IF_ERROR(read_quantization(r, c, path));
  return r.finish(/*allow_harmless=*/true);
}

// nlohmann keeps the last of duplicate keys silently; a config.json with two values for one
// field is ambiguous, so it is rejected. The callback tracks the keys of every open object.
Result<json> parse_json_strict(std::string_view text, std::string_view path) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() &&
            !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty())
          duplicate = parsed.get<std::string>();
        break;
      default:
        break;
    }
    return true;
  };
  json doc = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return invalid_argument(std::string(path) + ": not valid JSON");
  if (!duplicate.empty())
    return invalid_argument(std::string(path) + ": field '" + printable(duplicate) +
                            "' appears twice");
  return doc;
}

}  // namespace

Result<DeepSeekV4Config> parse_config(std::string_view text, std::string_view path) {
  if (text.size() > kMaxConfigBytes)
    return out_of_range(std::string(path) + ": " + std::to_string(text.size()) +
                        " bytes; a config.json is at most " + std::to_string(kMaxConfigBytes));
  FRUGAL_ASSIGN_OR_RETURN(json doc, parse_json_strict(text, path));
  if (!doc.is_object())
    return invalid_argument(std::string(path) + ": expected a JSON object, found " +
                            std::string(json_type_name(doc)));
  DeepSeekV4Config c;
  ObjectReader reader(doc, path, "");
  FRUGAL_RETURN_IF_ERROR(read_fields(reader, &c, path));
  FRUGAL_RETURN_IF_ERROR(validate_config(c, path));
  return c;
}

Result<DeepSeekV4Config> load_config(const std::string& path) {
  std::error_code ec;
  const std::string file = std::filesystem::is_directory(path, ec) ? path + "/config.json" : path;
  if (std::filesystem::is_directory(file, ec)) return invalid_argument(file + ": is a directory");
  std::ifstream in(file, std::ios::binary);
  if (!in) return io_error(file + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxConfigBytes)
      return out_of_range(file + ": larger than " + std::to_string(kMaxConfigBytes) +
                          " bytes; not a config.json");
  }
  if (in.bad()) return io_error(file + ": read failed");
  return parse_config(text, file);
}

}  // namespace frugal::v4
