#include "stream/embed_rows.h"

#include <cstring>
#include <string>
#include <utility>

#include "quant/weight.h"

namespace frugal::stream {

Result<std::unique_ptr<EmbedRows>> EmbedRows::create(const v4::ModelWeights& weights,
                                                     bool direct_io,
                                                     std::shared_ptr<const ExpertFiles> files) {
  const v4::TensorRef& ref = weights.embed_ref;
  const format::TensorInfo* t = ref.weight;
  if (t == nullptr || !weights.streamed_embed) {
    return invalid_argument(
        "EmbedRows: the weights were not loaded to stream the embedding "
        "(LoadOptions::stream_embed)");
  }
  if (ref.scale != nullptr) {  // the tensor table has it bf16; a scaled format needs its scales
    return unsupported(*t->file + ": tensor '" + t->name + "' is " +
                       std::string(quant::weight_format_name(ref.format)) +
                       "; only unscaled embedding rows (bf16, f32) can be read on demand");
  }
  std::unique_ptr<EmbedRows> e(new EmbedRows());
  e->tensor_ = t;
  e->what_ = "tensor '" + t->name + "'";
  e->format_ = ref.format;
  e->vocab_ = ref.rows;
  e->dim_ = ref.cols;
  e->row_bytes_ = quant::weight_data_bytes(e->format_, 1, e->dim_);
  if (e->row_bytes_ * static_cast<uint64_t>(e->vocab_) != t->size) {
    return invalid_argument(*t->file + ": tensor '" + t->name + "' holds " +
                            std::to_string(t->size) + " bytes, not " + std::to_string(e->vocab_) +
                            " rows of " + std::to_string(e->row_bytes_));
  }
  if (files != nullptr) {
    e->files_ = std::move(files);
  } else {
    FRUGAL_ASSIGN_OR_RETURN(e->files_, ExpertFiles::open(weights.checkpoint, direct_io));
  }
  // One row's pages: the row, plus a page on each side when it starts and ends mid-page.
  FRUGAL_ASSIGN_OR_RETURN(e->buffer_,
                          AlignedBuffer::allocate(e->row_bytes_ + 2 * kDirectIoAlign, &e->stats_,
                                                  {.alignment = kDirectIoAlign}));
  return e;
}

Status EmbedRows::rows(std::span<const int32_t> ids, float* out) {
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= vocab_) {  // the forward pass checks ids first: a bug if it happens
      return internal_error("embedding row " + std::to_string(id) + " outside [0, " +
                            std::to_string(vocab_) + ")");
    }
    const uint64_t at = static_cast<uint64_t>(id) * row_bytes_;
    FRUGAL_ASSIGN_OR_RETURN(const ReadRange r, files_->range(tensor_, at, row_bytes_));
    const Status st = files_->read(r, buffer_.data(), what_);  // no string built unless it fails
    if (!st.ok()) return st.with_context("embedding row " + std::to_string(id));
    std::byte* data = buffer_.data() + (tensor_->offset + at - r.offset);
    if (reinterpret_cast<uintptr_t>(data) % sizeof(float) != 0) {  // a file offset not 4-aligned
      std::memmove(buffer_.data(), data, row_bytes_);
      data = buffer_.data();
    }
    const quant::WeightView row{.format = format_, .rows = 1, .cols = dim_, .data = data};
    quant::dequantize_row(row, 0, out + static_cast<int64_t>(i) * dim_);
    ++rows_read_;
    bytes_read_ += r.length;
  }
  return ok_status();
}

}  // namespace frugal::stream
