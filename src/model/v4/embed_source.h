// Where the embedding's rows come from when its table is not resident (the memory budget,
// docs/STREAMING.md). A forward pass reads one row of embed.weight per token, so under a budget
// the table (1,010 MiB at V4 dims: 129,280 x 4,096 bf16) stays on disk and only the rows of the
// tokens in a pass are read, leaving that memory to expert slots.
//
// Implemented by stream::EmbedRows (src/stream/); the model never sees files.
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"

namespace frugal::v4 {

class EmbedSource {
 public:
  virtual ~EmbedSource() = default;

  // out [ids.size(), dim] = embed.weight[ids[i]] in f32, as quant::dequantize_row gives it from
  // the resident table (the ids are inside the vocabulary: the forward pass checked them). An
  // error (a failed or short read, a file changed on disk) names the file and tensor.
  virtual Status rows(std::span<const int32_t> ids, float* out) = 0;
};

}  // namespace frugal::v4
