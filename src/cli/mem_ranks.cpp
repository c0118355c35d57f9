#include "cli/mem_ranks.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "cli/command.h"
#include "engine/engine.h"
#include "engine/rank_plan.h"

namespace frugal::cli {
namespace {

using engine::format_bytes;

// "routed_experts 66.01 GiB, attention 1.54 GiB, ...": largest group first, lines of at most
// ~100 columns after the first, indented by `indent`.
std::string groups_text(const std::map<std::string, uint64_t>& by_kind, size_t first_column,
                        const std::string& indent) {
  std::vector<std::pair<std::string, uint64_t>> g(by_kind.begin(), by_kind.end());
  std::stable_sort(g.begin(), g.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string s;
  size_t column = first_column;
  for (size_t i = 0; i < g.size(); ++i) {
    std::string item = g[i].first + " " + format_bytes(g[i].second);
    if (i + 1 < g.size()) item += ",";
    if (i > 0 && column + 1 + item.size() > 100) {
      s += "\n" + indent;
      column = indent.size();
    } else if (i > 0) {
      s += " ";
      ++column;
    }
    s += item;
    column += item.size();
  }
  return s;
}

std::string percent(uint64_t part, uint64_t whole) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f %%", whole == 0 ? 0.0 : 100.0 * part / whole);
  return b;
}

std::string ranks_text(const engine::RankPlan& p) {
  std::string out;
  auto add = [&out](const char* fmt, auto... args) {
    char buf[1024];
    std::snprintf(buf, sizeof(buf), fmt, args...);
    out += buf;
  };
  const char* fmt = kv::cache_format_name(p.format);
  const int32_t per_stage = p.ranks / p.stages;
  if (p.ranks == 1) {
    add("1 process: the whole model; kv cache %s at %lld tokens\n", fmt,
        static_cast<long long>(p.ctx));
  } else if (p.stages == 1) {
    add("%d processes: each holds every block and 1/%d of its routed experts; kv cache %s at "
        "%lld tokens\n",
        p.ranks, p.ranks, fmt, static_cast<long long>(p.ctx));
  } else {
    add("%d processes: %d pipeline stages of %d, which split the routed experts of their "
        "stage's blocks; kv cache %s at %lld tokens\n",
        p.ranks, p.stages, per_stage, fmt, static_cast<long long>(p.ctx));
  }
  for (const engine::RankMemory& r : p.per_rank) {
    std::string held;
    if (r.shard.holds_embedding()) held += ", embedding";
    if (r.shard.holds_head()) held += ", head";
    if (r.shard.n_blocks > r.shard.n_layers && r.shard.holds_block(r.shard.n_layers)) {
      held += ", MTP";
    }
    add("%s%s\n", r.shard.describe().c_str(), held.c_str());
    const std::string head = "  weights " + format_bytes(r.weights_bytes) + ": ";
    add("%s%s\n", head.c_str(), groups_text(r.weights_by_kind, head.size(), "    ").c_str());
    add("  kv %s; total %s\n", format_bytes(r.kv.total()).c_str(), format_bytes(r.total()).c_str());
  }
  if (p.ranks == 1) return out;
  const engine::RankMemory& big = p.per_rank[static_cast<size_t>(p.largest)];
  add("largest: rank %d, %s (weights %s, kv %s)\n", p.largest, format_bytes(big.total()).c_str(),
      format_bytes(big.weights_bytes).c_str(), format_bytes(big.kv.total()).c_str());
  // sum = one process + replicated - held by no rank, weights and kv each.
  auto sum_line = [&add](const char* what, uint64_t w, uint64_t k, const std::string& note) {
    add("%s %s (weights %s%s, kv %s)\n", what, format_bytes(w + k).c_str(), format_bytes(w).c_str(),
        note.c_str(), format_bytes(k).c_str());
  };
  sum_line(("sum over " + std::to_string(p.ranks) + " ranks:").c_str(), p.sum_weights_bytes(),
           p.sum_kv_bytes(), "");
  sum_line("  = one process", p.whole_weights_bytes, p.whole_kv_bytes, "");
  sum_line(
      "  + replicated", p.replicated_weights_bytes(), p.replicated_kv_bytes(),
      " = " + percent(p.replicated_weights_bytes(), p.whole_weights_bytes) + " of one process's");
  if (p.unheld_weights_bytes + p.unheld_kv_bytes > 0) {
    sum_line("  - held by no rank", p.unheld_weights_bytes, p.unheld_kv_bytes, "");
  }
  add("replicated: every tensor but the routed experts, and the cache, on each of a stage's %d "
      "ranks\n",
      per_stage);
  if (p.unheld_weights_bytes > 0) {
    add("held by no rank: the MTP blocks (only a one-stage run holds them)\n");
  }
  return out;
}

std::string ranks_json(const engine::RankPlan& p) {
  using nlohmann::json;
  json ranks = json::array();
  for (const engine::RankMemory& r : p.per_rank) {
    const v4::Shard& s = r.shard;
    ranks.push_back({{"rank", s.rank},
                     {"shard", s.describe()},
                     {"stage", s.stage},
                     {"expert_rank", s.expert_rank},
                     {"first_block", s.first_block},
                     {"end_block", s.end_block},
                     {"first_expert", s.first_expert},
                     {"end_expert", s.end_expert},
                     {"embedding", s.holds_embedding()},
                     {"head", s.holds_head()},
                     {"mtp", s.n_blocks > s.n_layers && s.holds_block(s.n_layers)},
                     {"weights_bytes", r.weights_bytes},
                     {"weights_by_kind", r.weights_by_kind},
                     {"kv_bytes", r.kv.total()},
                     {"total_bytes", r.total()}});
  }
  json j;
  j["ranks"] = p.ranks;
  j["pipeline_stages"] = p.stages;
  j["expert_ranks"] = p.ranks / p.stages;
  j["ctx"] = p.ctx;
  j["kv_format"] = kv::cache_format_name(p.format);
  j["per_rank"] = std::move(ranks);
  j["largest_rank"] = p.largest;
  j["largest_total_bytes"] = p.per_rank[static_cast<size_t>(p.largest)].total();
  j["sum_weights_bytes"] = p.sum_weights_bytes();
  j["sum_kv_bytes"] = p.sum_kv_bytes();
  j["sum_total_bytes"] = p.sum_total();
  j["one_process_weights_bytes"] = p.whole_weights_bytes;
  j["one_process_kv_bytes"] = p.whole_kv_bytes;
  j["replicated_weights_bytes"] = p.replicated_weights_bytes();
  j["replicated_kv_bytes"] = p.replicated_kv_bytes();
  j["unheld_weights_bytes"] = p.unheld_weights_bytes;
  j["unheld_kv_bytes"] = p.unheld_kv_bytes;
  return j.dump();
}

}  // namespace

Status run_mem_ranks(const MemRanksOptions& o, const v4::DeepSeekV4Config& config) {
  FRUGAL_ASSIGN_OR_RETURN(kv::CacheFormat format, engine::parse_cache_format(o.cache));
  Result<engine::RankPlan> p = engine::plan_ranks(config, o.ranks, o.stages, o.ctx, format);
  if (!p.ok()) {
    // make_shard names --pipeline-stages itself; its other limits are on the process count.
    const Status& st = p.status();
    if (st.message().rfind("--", 0) == 0) return st;
    return st.with_context("--ranks " + std::to_string(o.ranks));
  }
  return write_output(o.json ? ranks_json(*p) + "\n" : ranks_text(*p));
}

}  // namespace frugal::cli
