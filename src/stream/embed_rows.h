// The embedding's rows read from the checkpoint on demand, under the memory budget
// (engine/budget.h): implements v4::EmbedSource, so the table (1,010 MiB at V4 dims) never
// takes memory the expert slots can use. A forward pass reads one row per token: one O_DIRECT
// read of the pages that hold it (8 KiB of a bf16 row of 4,096, 12 KiB when it straddles a
// page) into an aligned buffer sized at creation, then the row converted as quant::dequantize_row
// converts it from a resident table, so the values are the same bit for bit.
//
// Faults are errors naming the file and tensor (expert_files.h): a failed or short read, a file
// changed on disk since the load. Not thread-safe: the forward pass calls it from one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/memory.h"
#include "core/status.h"
#include "model/v4/embed_source.h"
#include "model/v4/weights.h"
#include "stream/expert_files.h"

namespace frugal::stream {

class EmbedRows final : public v4::EmbedSource {
 public:
  // For weights loaded with LoadOptions::stream_embed (weights.embed_ref set). Reads through
  // `files` (the expert cache's, ExpertCache::files(): the checkpoint is opened once) or, when
  // null, opens the checkpoint's files itself (O_DIRECT when `direct_io` and the file system
  // allows it).
  static Result<std::unique_ptr<EmbedRows>> create(const v4::ModelWeights& weights, bool direct_io,
                                                   std::shared_ptr<const ExpertFiles> files = {});

  Status rows(std::span<const int32_t> ids, float* out) override;

  uint64_t rows_read() const { return rows_read_; }
  uint64_t bytes_read() const { return bytes_read_; }
  // The buffer it reads into (what it holds besides the open files).
  uint64_t buffer_bytes() const { return buffer_.size(); }
  bool direct_io() const { return files_->direct(); }
  const ExpertFiles* files() const { return files_.get(); }  // what it reads through

 private:
  EmbedRows() = default;

  const format::TensorInfo* tensor_ = nullptr;
  std::string what_;  // names the tensor in read errors
  quant::WeightFormat format_ = quant::WeightFormat::kBF16;
  int64_t vocab_ = 0, dim_ = 0;
  uint64_t row_bytes_ = 0;
  std::shared_ptr<const ExpertFiles> files_;
  MemoryStats stats_;  // the buffer's bytes
  AlignedBuffer buffer_;
  uint64_t rows_read_ = 0, bytes_read_ = 0;
};

}  // namespace frugal::stream
