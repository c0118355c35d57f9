#include "cli/bench_parallel.h"

#include <cstdio>

namespace frugal::cli {
namespace {

struct PerToken {
  double gather_bytes_per_layer = 0;  // received per token per MoE layer
  double stream_bytes_out = 0, stream_bytes_in = 0;
  double output_bytes = 0;
  double mpi_share = 0;
  double gathers_per_token = 0;
};

PerToken per_token(const v4::DeepSeekV4Config& c, const ParallelPhase& p) {
  PerToken t;
  if (p.tokens <= 0) return t;
  const double n = static_cast<double>(p.tokens);
  const parallel::ExchangeStats& s = p.stats;
  // gather_rows counts n_activated_experts rows per token per call.
  const double token_layers = static_cast<double>(s.gather_rows) / c.n_activated_experts;
  if (token_layers > 0)
    t.gather_bytes_per_layer = static_cast<double>(s.gather_bytes_in) / token_layers;
  t.stream_bytes_out = static_cast<double>(s.stream_bytes_out) / n;
  t.stream_bytes_in = static_cast<double>(s.stream_bytes_in) / n;
  t.output_bytes = static_cast<double>(s.output_bytes_in) / n;
  t.mpi_share = p.seconds > 0 ? s.seconds / p.seconds : 0;
  t.gathers_per_token = token_layers / n;
  return t;
}

}  // namespace

std::string parallel_text(const v4::DeepSeekV4Config& c, const ParallelFigures& f) {
  std::string out;
  char buf[400];
  std::snprintf(buf, sizeof(buf), "parallel run: %s (figures of rank 0)\n",
                f.shard.describe().c_str());
  out += buf;
  for (const auto& [name, phase] : {std::pair{"prefill", &f.prefill}, {"decode", &f.decode}}) {
    const PerToken t = per_token(c, *phase);
    std::snprintf(buf, sizeof(buf),
                  "  %s: per token: expert rows received %.0f B per MoE layer (%.1f layers), "
                  "streams out %.0f B / in %.0f B, outputs in %.0f B; %.1f %% of the time in "
                  "MPI\n",
                  name, t.gather_bytes_per_layer, t.gathers_per_token, t.stream_bytes_out,
                  t.stream_bytes_in, t.output_bytes, 100.0 * t.mpi_share);
    out += buf;
  }
  return out;
}

nlohmann::json parallel_json(const v4::DeepSeekV4Config& c, const ParallelFigures& f) {
  nlohmann::json j = {{"rank", f.shard.rank},
                      {"ranks", f.shard.ranks},
                      {"stages", f.shard.stages},
                      {"expert_ranks", f.shard.expert_ranks},
                      {"shard", f.shard.describe()}};
  for (const auto& [name, phase] : {std::pair{"prefill", &f.prefill}, {"decode", &f.decode}}) {
    const PerToken t = per_token(c, *phase);
    j[name] = {{"tokens", phase->tokens},
               {"expert_row_bytes_per_token_per_moe_layer", t.gather_bytes_per_layer},
               {"moe_layer_gathers_per_token", t.gathers_per_token},
               {"stream_bytes_out_per_token", t.stream_bytes_out},
               {"stream_bytes_in_per_token", t.stream_bytes_in},
               {"output_bytes_per_token", t.output_bytes},
               {"mpi_seconds", phase->stats.seconds},
               {"mpi_time_share", t.mpi_share}};
  }
  return j;
}

}  // namespace frugal::cli
