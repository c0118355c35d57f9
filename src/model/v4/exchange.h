// What the forward pass needs from the other processes of a parallel run (docs/PARALLEL.md);
// implemented over MPI by parallel::MpiExchange (src/parallel/), so the model never sees a
// transport. Every process of the run calls the same forward with the same tokens (the front end
// runs on every rank, only rank 0 talks to the user), so each call below is made by all the
// processes it concerns, in the same order.
//
// - Expert parallel: a process computes the routed experts it holds (Shard::first_expert ..)
//   into their rows of the MoE layer's row buffer, and gather_expert_rows fills in the rows of
//   the other experts from the processes of its stage that hold them. The layer then sums every
//   token's rows in ascending expert id, the reference's order, so the logits do not depend on
//   the number of processes: bit-identical to one process.
// - Pipeline parallel: a stage receives the hyper-connection streams of a span from the previous
//   stage and sends its own on to the next; the last stage's outputs (logits, streams) reach
//   every process through share_outputs.
//
// A failure inside one process cannot be returned to the others, which would wait for it in a
// collective: implementations stop the whole run with a message naming the process instead.
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"
#include "model/v4/shard.h"

namespace frugal::v4 {

class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual const Shard& shard() const = 0;

  // rows [eoff[n_routed_experts], width]: the rows of expert e are eoff[e] .. eoff[e + 1] - 1.
  // On entry this process's experts' rows are filled; on return every row is, the same bytes on
  // every process of the stage. `block` is for accounting and error messages.
  virtual Status gather_expert_rows(int32_t block, float* rows, std::span<const int32_t> eoff,
                                    int64_t width) = 0;
  // The streams of a span, [floats] (rows x hc x dim), from the previous stage / to the next.
  virtual Status receive_streams(float* x, int64_t floats) = 0;
  virtual Status send_streams(const float* x, int64_t floats) = 0;
  // The last stage's `out` (logits, streams) copied to every process; all call it with the same
  // size.
  virtual Status share_outputs(std::span<float> out) = 0;
  // Stops every process of the run: `st` failed here after the others may have entered a
  // collective this process will never reach. Prints the error with this process's rank.
  [[noreturn]] virtual void abort(const Status& st) = 0;
};

}  // namespace frugal::v4
