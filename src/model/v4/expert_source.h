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

// An expert handed over by ExpertSource::next.
struct HandedExpert {
  int32_t expert = -1;
  const ExpertWeights* weights = nullptr;
};

class ExpertSource {
 public:
  virtual ~ExpertSource() = default;

  // The routed experts block `block` needs now (ascending ids, distinct, non-empty). Starts the
  // reads of those not in memory. One layer at a time: every begin_layer is followed by next()
  // calls until it reports the end.
  virtual Status begin_layer(int32_t block, std::span<const int32_t> experts) = 0;
  // The next experts of the layer to compute, at most out.size(): those of the remaining ones
  // already in memory, blocking only while none is (every remaining one still being read); 0
  // when the layer is done. Several at once let a pass compute them one per thread. Their weights
  // stay valid until the following next() / begin_layer() call. An error (a failed or short
  // read, a file changed on disk) names the file and tensor.
  virtual Result<size_t> next(std::span<HandedExpert> out) = 0;
  // One at a time: the expert id, -1 when the layer is done.
  Result<int32_t> next(const ExpertWeights** weights) {
    HandedExpert one;
    FRUGAL_ASSIGN_OR_RETURN(const size_t n, next(std::span(&one, 1)));
    *weights = one.weights;
    return n == 0 ? -1 : one.expert;
  }

  // Whether hint() is worth the router matmul it costs (the source has room to prefetch into).
  virtual bool wants_hints() const = 0;
  // A guess of the experts block `block` will need next (any order, may repeat); reads of the
  // missing ones start behind the current layer's. Never evicts what the current layer uses.
  // `exact`: not a guess but the block's routing itself (a hash layer's tid2eid lookup), so every
  // expert named will be asked for.
  virtual void hint(int32_t block, std::span<const int32_t> experts, bool exact) = 0;
};

}  // namespace frugal::v4
