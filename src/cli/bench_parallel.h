// frugal bench in a parallel run (mpirun, docs/PARALLEL.md): what the processes exchanged per
// token, taken apart by phase (the prefill, the decode steps), as rank 0 measured it:
//   expert rows: bytes this process received in the MoE layers' gathers, per token and per MoE
//     layer (each token's rows of the experts other processes hold: n_activated_experts x dim
//     floats x (1 - its share), on average);
//   streams: bytes sent to / received from the next / previous pipeline stage per token
//     (hc_mult x dim floats per stage boundary);
//   outputs: logits received from the last stage per token (vocab floats per decode step);
//   MPI time: the share of the phase spent inside MPI calls (waiting for the other processes
//     included: the time a slower process makes this one wait shows up here).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model/v4/config.h"
#include "model/v4/shard.h"
#include "parallel/world.h"

namespace frugal::cli {

struct ParallelPhase {
  parallel::ExchangeStats stats;  // summed over the repetitions
  int64_t tokens = 0;             // summed over the repetitions
  double seconds = 0;             // summed over the repetitions
};

struct ParallelFigures {
  v4::Shard shard;
  ParallelPhase prefill, decode;
};

std::string parallel_text(const v4::DeepSeekV4Config& c, const ParallelFigures& f);
nlohmann::json parallel_json(const v4::DeepSeekV4Config& c, const ParallelFigures& f);

}  // namespace frugal::cli
