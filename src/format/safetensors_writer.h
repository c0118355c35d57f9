// Streaming safetensors writer: a sharded checkpoint whose tensors are produced one at a time,
// straight into their shard, so a checkpoint larger than RAM can be written (frugal synth). The
// in-memory writers of safetensors.h (write_safetensors, write_sharded) are the same code with a
// producer that copies given bytes.
//
// Layout (identical to write_sharded's): shards filled greedily in the given order up to
// max_shard_bytes of tensor data; inside a shard, tensors in order of decreasing element size,
// keeping the given order within a size, with no gaps. The header of a shard depends only on
// names, dtypes and shapes, so it is written first and each tensor goes to its final offset as it
// is produced: the producer runs in the given order while the file is filled out of order.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace frugal::format {

// Where a producer puts the bytes of one tensor: append() them in order, in pieces of any size,
// exactly the tensor's size in all (more is an error at once, less when the producer returns).
class TensorSink {
 public:
  virtual ~TensorSink() = default;
  virtual Status append(std::span<const std::byte> bytes) = 0;
};

struct TensorToStream {
  std::string name;
  DType dtype = DType::kF32;  // kFP4E2M1 is not writable: store packed FP4 as kI8 [out, in/2]
  std::vector<int64_t> shape;
  // Never start a new shard before this tensor: it and the tensors it is chained to are one unit
  // for sharding (e.g. a routed expert's w1, w2, w3 and their scales, read together). A unit
  // larger than max_shard_bytes gets a shard of its own.
  bool same_shard_as_previous = false;
};

// Called once per tensor, in the order given, with the tensor's index into that list.
using TensorProducer = std::function<Status(size_t index, TensorSink& sink)>;

struct StreamedShardsOptions {
  uint64_t max_shard_bytes = 4ull << 30;
  std::map<std::string, std::string> metadata = {};  // every shard's "__metadata__"
  // Told the size of every piece written, as it is written (progress).
  std::function<void(uint64_t bytes)> on_written = nullptr;
};

// Writes `dir/model-0000K-of-0000N.safetensors` (each through core/atomic_file_writer.h) and
// then `dir/model.safetensors.index.json` (metadata.total_size = the sum of tensor sizes); `dir`
// is created if needed. Names, dtypes and shapes are checked before anything is written (the
// errors of write_sharded); a producer's error, or a wrong number of bytes, stops the write with
// an error naming the tensor, and the shard being written is removed.
Status write_sharded_streamed(const std::string& dir, std::span<const TensorToStream> tensors,
                              const TensorProducer& produce,
                              const StreamedShardsOptions& options = {});

}  // namespace frugal::format
