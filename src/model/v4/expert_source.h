// Where the routed experts' weights come from when they are not all resident (the memory budget,
// docs/STREAMING.md). The MoE layer of a block routes its tokens, names the experts they selected
// to the source, and then computes each expert as the source hands it over: the ones already in
// memory first, the others as their reads complete. Every expert's output rows are kept apart
// and summed per token in ascending expert id at the end, so the order in which experts arrive
// changes nothing: the logits equal those of the resident model bit for bit.
//
// Implemented by stream::ExpertCache (src/stream/); the model never sees files or threads.
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"
#include "model/v4/weights.h"

namespace frugal::v4 {

class ExpertSource {
 public:
  virtual ~ExpertSource() = default;

  // The routed experts block `block` needs now (ascending ids, distinct, non-empty). Starts the
  // reads of those not in memory. One layer at a time: every begin_layer is followed by next()
  // calls until it reports the end.
  virtual Status begin_layer(int32_t block, std::span<const int32_t> experts) = 0;
  // The next expert of the layer to compute, blocking while every remaining one is still being
  // read; -1 when the layer is done. The weights stay valid until the following next() call.
  // An error (a failed or short read, a file changed on disk) names the file and tensor.
  virtual Result<int32_t> next(const ExpertWeights** weights) = 0;

  // Whether hint() is worth the router matmul it costs (the source has room to prefetch into).
  virtual bool wants_hints() const = 0;
  // A guess of the experts block `block` will need next (any order, may repeat); reads of the
  // missing ones start behind the current layer's. Never evicts what the current layer uses.
  // `exact`: not a guess but the block's routing itself (a hash layer's tid2eid lookup), so every
  // expert named will be asked for.
  virtual void hint(int32_t block, std::span<const int32_t> experts, bool exact) = 0;
};

}  // namespace frugal::v4
