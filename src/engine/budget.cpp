#include "engine/budget.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/dtype.h"
#include "engine/engine.h"
#include "engine/memory_plan.h"
#include "model/v4/model.h"
#include "model/v4/tensor_table.h"

namespace frugal::engine {
namespace {

using v4::TensorKind;

__extension__ typedef unsigned __int128 U128;  // parse_size's exact products

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

bool is_routed_expert(TensorKind k) {
  return k == TensorKind::kExpertW1 || k == TensorKind::kExpertW1Scale ||
         k == TensorKind::kExpertW2 || k == TensorKind::kExpertW2Scale ||
         k == TensorKind::kExpertW3 || k == TensorKind::kExpertW3Scale;
}

// The bytes a tensor may occupy in a checkpoint: the larger of its dtype and its alternative.
uint64_t max_stored_bytes(const v4::TensorSpec& s) {
  uint64_t b = s.bytes();
  if (s.has_alt) b = std::max(b, dtype_bytes(s.alt_dtype, s.numel()));
  return b;
}

// expert_slot_bytes and resident_weight_bytes on a table already built (a V4-Flash table has
// ~70k entries: plan_budget builds it once).
uint64_t slot_bytes_of(const v4::TensorTable& table, const v4::DeepSeekV4Config& c) {
  std::vector<uint64_t> per_block(static_cast<size_t>(c.n_blocks()), 0);  // expert 0 of a block
  for (const v4::TensorSpec& s : table.entries()) {
    if (!is_routed_expert(s.kind) || s.expert != 0) continue;
    per_block[static_cast<size_t>(s.block)] +=
        round_up(max_stored_bytes(s), kDirectIoAlign) + kDirectIoAlign;
  }
  return per_block.empty() ? 0 : *std::max_element(per_block.begin(), per_block.end());
}

uint64_t resident_of(const v4::TensorTable& table, const v4::DeepSeekV4Config& c, bool with_mtp,
                     const v4::Shard* shard, std::map<std::string, uint64_t>* by_kind) {
  uint64_t total = 0;
  for (const v4::TensorSpec& s : table.entries()) {
    if (is_routed_expert(s.kind) || s.kind == v4::TensorKind::kEmbed) continue;  // read on demand
    if (!with_mtp && s.block != v4::kNoBlock && c.is_mtp_block(s.block)) continue;
    if (shard != nullptr && !v4::holds_tensor(*shard, s)) continue;
    total += s.bytes();
    if (by_kind != nullptr) (*by_kind)[weight_group(s, c.n_layers)] += s.bytes();
  }
  return total;
}

}  // namespace

uint64_t expert_slot_bytes(const v4::DeepSeekV4Config& c) {
  return slot_bytes_of(v4::TensorTable(c), c);
}

uint64_t resident_weight_bytes(const v4::DeepSeekV4Config& c, bool with_mtp,
                               const v4::Shard* shard) {
  return resident_of(v4::TensorTable(c), c, with_mtp, shard, nullptr);
}

int64_t streamed_expert_count(const v4::DeepSeekV4Config& c, bool with_mtp,
                              const v4::Shard* shard) {
  if (shard == nullptr) return c.n_routed_experts * (c.n_layers + (with_mtp ? c.n_mtp_layers : 0));
  int64_t blocks = 0;
  for (int64_t b = 0; b < c.n_blocks(); ++b) {
    if (shard->holds_block(b) && (with_mtp || !c.is_mtp_block(b))) ++blocks;
  }
  return blocks * (shard->end_expert - shard->first_expert);
}

uint64_t activation_bytes_for(const v4::DeepSeekV4Config& c, int64_t max_chunk,
                              int64_t max_seq_len) {
  return v4::Model::scratch_bytes_for(c, {.max_chunk = max_chunk, .max_seq_len = max_seq_len},
                                      /*streamed_experts=*/true);
}

Result<BudgetPlan> plan_budget(const v4::DeepSeekV4Config& c, uint64_t budget,
                               uint64_t activation_bytes, uint64_t kv_bytes, bool with_mtp,
                               const v4::Shard* shard) {
  BudgetPlan p;
  p.budget = budget;
  p.with_mtp = with_mtp;
  const v4::TensorTable table(c);
  p.resident_weight_bytes = resident_of(table, c, with_mtp, shard, &p.resident_by_kind);
  if (shard == nullptr || shard->holds_embedding()) {
    const v4::TensorSpec* embed = table.find(v4::TensorKind::kEmbed, v4::kNoBlock);
    p.streamed_embed_bytes = embed != nullptr ? embed->bytes() : 0;
  }
  p.activation_bytes = activation_bytes;
  p.kv_bytes = kv_bytes;
  p.slot_bytes = slot_bytes_of(table, c);
  p.streamed_experts = streamed_expert_count(c, with_mtp, shard);
  p.min_slots = std::min(kMinSlotsPerToken * c.n_activated_experts, p.streamed_experts);
  const uint64_t fixed =
      p.resident_weight_bytes + p.activation_bytes + p.kv_bytes + p.overhead_bytes;
  p.min_budget = fixed + static_cast<uint64_t>(p.min_slots) * p.slot_bytes;
  if (budget < p.min_budget) {
    char slots[96];
    std::snprintf(slots, sizeof(slots), "%lld expert slots of %s",
                  static_cast<long long>(p.min_slots), format_bytes(p.slot_bytes).c_str());
    return resource_exhausted("--mem-budget " + format_bytes(budget) + " is below the minimum " +
                              format_bytes(p.min_budget) + " for this model (resident weights " +
                              format_bytes(p.resident_weight_bytes) + ", activations " +
                              format_bytes(p.activation_bytes) + ", kv cache " +
                              format_bytes(p.kv_bytes) + ", overhead " +
                              format_bytes(p.overhead_bytes) + ", " + slots + "); give at least " +
                              std::to_string(p.min_budget) + " bytes");
  }
  const uint64_t room = budget - fixed;
  p.slots = p.slot_bytes == 0
                ? p.streamed_experts
                : static_cast<int64_t>(std::min<uint64_t>(
                      room / p.slot_bytes, static_cast<uint64_t>(p.streamed_experts)));
  return p;
}

// ---- sizes ----

Result<uint64_t> parse_size(const std::string& text, const std::string& flag) {
  auto bad = [&](const std::string& why) {
    return invalid_argument(flag + ": " + why + ", got \"" + text +
                            "\" (examples: 8G, 8GiB, 512M, 1.5G, 123456 bytes; K/M/G/T are "
                            "powers of 1024)");
  };
  size_t i = 0;
  const size_t n = text.size();
  auto digit = [&](size_t k) { return k < n && text[k] >= '0' && text[k] <= '9'; };
  if (!digit(0)) return bad("expected a size starting with a digit");
  U128 whole = 0;
  for (; digit(i); ++i) {
    whole = whole * 10 + static_cast<unsigned>(text[i] - '0');
    if (whole > UINT64_MAX) return bad("too large");
  }
  U128 frac = 0, frac_den = 1;
  bool has_frac = false;
  if (i < n && text[i] == '.') {
    ++i;
    if (!digit(i)) return bad("expected digits after the decimal point");
    has_frac = true;
    for (; digit(i); ++i) {
      if (frac_den >= U128{1000000000000000000ULL}) continue;  // 18 digits suffice
      frac = frac * 10 + static_cast<unsigned>(text[i] - '0');
      frac_den *= 10;
    }
  }
  const std::string unit = text.substr(i);
  U128 mult = 1;
  if (!unit.empty() && unit != "B") {
    const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0])));
    const size_t pos = std::string_view("KMGT").find(u);
    if (pos == std::string_view::npos) return bad("unknown unit \"" + unit + "\"");
    const std::string rest = unit.substr(1);
    if (rest == "B" || rest == "b") {
      return bad("\"" + unit + "\" is ambiguous (10^" + std::to_string(3 * (pos + 1)) + " or 2^" +
                 std::to_string(10 * (pos + 1)) + "); write " + std::string(1, u) + " or " +
                 std::string(1, u) + "iB");
    }
    if (!rest.empty() && rest != "iB" && rest != "ib") return bad("unknown unit \"" + unit + "\"");
    mult = U128{1} << (10 * (pos + 1));
  }
  if (has_frac && mult == 1) return bad("a number of bytes must be whole");
  const U128 value = whole * mult + frac * mult / frac_den;
  if (value > UINT64_MAX) return bad("too large");
  if (value == 0) return bad("must be positive");
  return static_cast<uint64_t>(value);
}

// ---- prediction ----

DecodePrediction predict_decode(const v4::DeepSeekV4Config& c, double hit_rate, double ram_gbps,
                                double disk_gbps) {
  const v4::TensorTable table(c);
  double experts = 0;  // bytes of the routed experts one token reads (main blocks)
  for (const v4::TensorSpec& s : table.entries()) {
    if (is_routed_expert(s.kind) && s.expert == 0 && !c.is_mtp_block(s.block)) {
      experts += static_cast<double>(s.bytes()) * static_cast<double>(c.n_activated_experts);
    }
  }
  const double h = std::clamp(hit_rate, 0.0, 1.0);
  const double resident = static_cast<double>(decode_weight_bytes_per_token(c)) - experts;
  DecodePrediction d;
  d.ram_bytes_per_token = resident + h * experts;
  d.disk_bytes_per_token = (1.0 - h) * experts;
  if (ram_gbps <= 0 || disk_gbps <= 0) return d;
  const double ram_s = d.ram_bytes_per_token / (ram_gbps * 1e9);
  const double disk_s = d.disk_bytes_per_token / (disk_gbps * 1e9);
  if (ram_s + disk_s > 0) d.tok_s = 1.0 / (ram_s + disk_s);
  if (std::max(ram_s, disk_s) > 0) d.overlapped_tok_s = 1.0 / std::max(ram_s, disk_s);
  return d;
}

double uniform_hit_rate(int64_t slots, int64_t streamed_experts) {
  if (streamed_experts <= 0) return 1.0;
  return std::clamp(static_cast<double>(slots) / static_cast<double>(streamed_experts), 0.0, 1.0);
}

// ---- expert profiles ----

Result<ExpertProfile> parse_expert_profile(std::string_view text, std::string_view path) {
  using nlohmann::json;
  const std::string where(path);
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(where + ": not valid JSON");
  if (!j.is_object()) return invalid_argument(where + ": expected a JSON object {\"blocks\": ...}");
  const auto it = j.find("blocks");
  if (it == j.end()) return invalid_argument(where + ": missing \"blocks\"");
  if (!it->is_array() || it->empty()) {
    return invalid_argument(where + ": \"blocks\" must be a non-empty array of arrays of counts");
  }
  ExpertProfile p;
  p.reserve(it->size());
  for (size_t b = 0; b < it->size(); ++b) {
    const json& row = (*it)[b];
    const std::string at = where + ": blocks[" + std::to_string(b) + "]";
    if (!row.is_array() || row.empty()) {
      return invalid_argument(at + " must be a non-empty array of counts");
    }
    if (!p.empty() && row.size() != p.front().size()) {
      return invalid_argument(at + " has " + std::to_string(row.size()) + " counts, blocks[0] " +
                              std::to_string(p.front().size()));
    }
    std::vector<uint64_t>& counts = p.emplace_back();
    counts.reserve(row.size());
    for (size_t e = 0; e < row.size(); ++e) {
      const json& v = row[e];
      if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
        return invalid_argument(at + "[" + std::to_string(e) +
                                "]: expected a non-negative integer count, got " + v.dump());
      }
      counts.push_back(v.get<uint64_t>());
    }
  }
  return p;
}

Result<ExpertProfile> load_expert_profile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found(path + ": cannot open the expert profile");
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 0) return io_error(path + ": cannot read the expert profile");
  if (static_cast<uint64_t>(size) > kMaxExpertProfileBytes) {
    return invalid_argument(path + ": expert profile of " + std::to_string(size) +
                            " bytes is larger than the " +
                            std::to_string(kMaxExpertProfileBytes >> 20) + " MiB accepted");
  }
  f.seekg(0);
  std::string text(static_cast<size_t>(size), '\0');
  if (!f.read(text.data(), size)) return io_error(path + ": cannot read the expert profile");
  return parse_expert_profile(text, path);
}

Status check_expert_profile(const ExpertProfile& profile, const v4::DeepSeekV4Config& c,
                            std::string_view path) {
  const std::string where(path);
  const auto rows = static_cast<int64_t>(profile.size());
  if (rows != c.n_layers && rows != c.n_blocks()) {
    return invalid_argument(where + ": " + std::to_string(rows) + " blocks, the model has " +
                            std::to_string(c.n_layers) + " (+" + std::to_string(c.n_mtp_layers) +
                            " MTP); is the profile of another model?");
  }
  uint64_t total = 0;
  for (const std::vector<uint64_t>& row : profile) {
    if (static_cast<int64_t>(row.size()) != c.n_routed_experts) {
      return invalid_argument(where + ": " + std::to_string(row.size()) +
                              " experts per block, the model has " +
                              std::to_string(c.n_routed_experts));
    }
    for (uint64_t v : row) total += v;
  }
  if (total == 0) return invalid_argument(where + ": every count is 0");
  return ok_status();
}

double profile_hit_rate(const ExpertProfile& profile, int64_t slots) {
  std::vector<uint64_t> all;
  for (const std::vector<uint64_t>& row : profile) all.insert(all.end(), row.begin(), row.end());
  long double total = 0;
  for (uint64_t v : all) total += static_cast<long double>(v);
  if (total == 0 || slots <= 0) return 0.0;
  const size_t k = std::min(all.size(), static_cast<size_t>(slots));
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                    std::greater<>());
  long double hot = 0;
  for (size_t i = 0; i < k; ++i) hot += static_cast<long double>(all[i]);
  return static_cast<double>(hot / total);
}

}  // namespace frugal::engine
