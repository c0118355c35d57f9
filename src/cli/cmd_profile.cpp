// frugal profile -m DIR -f TEXT [-o FILE] [--ctx N] [--chunks N]: how often each block's router
// picks each routed expert on a text, written as an expert profile (engine/budget.h: {"blocks":
// [[count per expert] per block], ...}) that a later run pins the hottest experts from
// (--expert-profile) and `frugal mem --budget` predicts hit rates with. The text is run in
// sequences of --ctx tokens (prefill only: routing needs no sampling) and every token's choices in
// every block are counted; the summary printed says how skewed the routing is (the share of the
// selections the hottest 10 % of each block's experts take). Runs under --mem-budget like run.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "cli/engine_flags.h"
#include "cli/command.h"
#include "core/file_write.h"
#include "core/progress.h"
#include "engine/engine.h"

namespace frugal::cli {
namespace {

struct ProfileOptions {
  std::string model;
  std::string file;
  std::string out = "expert-profile.json";
  int64_t ctx = 1024;
  int64_t max_chunks = 0;
  int threads = 0;
  EngineFlags engine;
};

// Share of a row's counts that its hottest `frac` of experts take.
double top_share(std::vector<uint64_t> row, double frac) {
  const uint64_t total = std::accumulate(row.begin(), row.end(), uint64_t{0});
  if (total == 0) return 0;
  std::sort(row.rbegin(), row.rend());
  const size_t k = std::max<size_t>(1, static_cast<size_t>(frac * static_cast<double>(row.size())));
  return static_cast<double>(std::accumulate(row.begin(), row.begin() + k, uint64_t{0})) /
         static_cast<double>(total);
}

Status run_profile(const ProfileOptions& o) {
  engine::EngineOptions eo;
  eo.model_dir = o.model;
  eo.threads = o.threads;
  eo.max_seq_len = o.ctx;
  FRUGAL_RETURN_IF_ERROR(apply_engine_flags(o.engine, eo));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> eng, engine::Engine::load(eo));
  FRUGAL_ASSIGN_OR_RETURN(std::string text, read_input(o.file, "input file"));
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int32_t> ids, eng->tokenizer().encode(text, {}));
  if (ids.empty()) return invalid_argument(o.file + ": no tokens to profile");
  const v4::DeepSeekV4Config& c = eng->config();
  const int64_t blocks = c.n_layers;  // the MTP block does not run in a prefill
  const int64_t n_exp = c.n_routed_experts;
  std::vector<uint64_t> counts(static_cast<size_t>(c.n_blocks() * n_exp), 0);
  FRUGAL_RETURN_IF_ERROR(eng->model().set_expert_counts(counts));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<kv::V4SequenceCache> cache, eng->new_cache());
  int64_t chunks = (static_cast<int64_t>(ids.size()) + o.ctx - 1) / o.ctx;
  if (o.max_chunks > 0) chunks = std::min(chunks, o.max_chunks);
  const int64_t tokens = std::min<int64_t>(static_cast<int64_t>(ids.size()), chunks * o.ctx);
  const bool tty = stderr_is_terminal();
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t first = k * o.ctx;
    const int64_t n = std::min<int64_t>(o.ctx, tokens - first);
    cache->clear();
    FRUGAL_RETURN_IF_ERROR(eng->model().forward(
        *cache, {.ids = std::span(ids).subspan(static_cast<size_t>(first), static_cast<size_t>(n)),
                 .logits_mode = v4::LogitsMode::kNone}));
    if (tty) {
      std::fprintf(stderr, "\rprofiling: %lld / %lld tokens", static_cast<long long>(first + n),
                   static_cast<long long>(tokens));
    }
  }
  if (tty) std::fprintf(stderr, "\n");
  FRUGAL_RETURN_IF_ERROR(eng->model().set_expert_counts({}));

  nlohmann::json rows = nlohmann::json::array();
  double share = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    std::vector<uint64_t> row(counts.begin() + b * n_exp, counts.begin() + (b + 1) * n_exp);
    share += top_share(row, 0.1);
    rows.push_back(row);
  }
  const nlohmann::json j = {{"model", o.model},
                            {"text", o.file},
                            {"tokens", tokens},
                            {"n_routed_experts", n_exp},
                            {"n_activated_experts", c.n_activated_experts},
                            {"blocks", rows}};
  FRUGAL_RETURN_IF_ERROR(write_file_atomic(o.out, j.dump() + "\n"));
  char line[256];
  std::snprintf(line, sizeof(line),
                "profiled %lld tokens over %lld blocks: the hottest 10%% of a block's experts take "
                "%.1f %% of its selections (uniform: 10 %%); wrote %s\n",
                static_cast<long long>(tokens), static_cast<long long>(blocks),
                100.0 * share / static_cast<double>(blocks), o.out.c_str());
  return write_output(line);
}

}  // namespace

Command add_profile(CLI::App& root) {
  auto o = std::make_shared<ProfileOptions>();
  o->model = default_model_dir();
  CLI::App* sub = root.add_subcommand(
      "profile",
      "Count each block's routed-expert choices on a text (an expert profile to pin "
      "the hottest experts from under --mem-budget)");
  add_model_option(sub, &o->model);
  sub->add_option("-f,--file", o->file,
                  "Text file, tokenized with the model's tokenizer ('-' = stdin)")
      ->required();
  sub->add_option("-o,--output", o->out, "Profile to write (JSON)")->capture_default_str();
  sub->add_option("--ctx", o->ctx, "Tokens per sequence")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_option("--chunks", o->max_chunks, "Profile only the first N sequences (0 = all)")
      ->check(at_least(0));
  sub->add_option("-t,--threads", o->threads, "Worker threads (0 = one per CPU)")
      ->check(at_least(0));
  add_engine_flags(sub, &o->engine);
  return {sub, [o] { return run_profile(*o); }};
}

}  // namespace frugal::cli
