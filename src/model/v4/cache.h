// What the V4 forward pass needs from the cache of one sequence. The storage (entry formats,
// block growth, memory report, snapshots) lives in src/kv, which implements this interface: kv
// depends on model (style.md: core <- ... <- model <- kv), and the model sees only this view.
//
// Cache-exact entries: the forward pass stores entries that every format holds without loss, so a
// value read back equals the value the prefill attended to (decode == prefill exactly):
//   main KV (window ring and compressed): dims 0..nope-1 are FP8-simulated (e4m3 code x power of
//     two per 64), dims nope..head_dim-1 (RoPE) are f32, or bf16-rounded when rope_bf16() (the
//     bf16 and 584-byte FP8 formats store the RoPE dims as bf16);
//   indexer keys: FP4-simulated (e2m1 code x power of two per 32) on every dim.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "quant/weight_view.h"

namespace frugal::v4 {

// Which compressor of a block: the main one (CSA and HCA) or the lightning indexer's (CSA).
enum class CompressorSlot : uint8_t { kMain, kIndexer };

// The decode state of one compressor (reference Compressor.kv_state / score_state), f32
// [rows, cols] each, rows = c * ratio, cols = c * width (c = 2 when overlapping).
struct CompressorState {
  float* kv_state = nullptr;
  float* score_state = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
};

class SequenceCacheView {
 public:
  virtual ~SequenceCacheView() = default;

  // Tokens of the main model held (positions 0..length()-1), and of the MTP blocks.
  virtual int64_t length() const = 0;
  virtual int64_t mtp_length() const = 0;
  // Makes room for positions < `tokens` in every block (allocating fixed-size pages) so that the
  // forward pass that follows never allocates. Fails with resource_exhausted over a budget.
  virtual Status reserve(int64_t tokens) = 0;
  // Records that the forward pass has written positions < `tokens`.
  virtual void set_length(int64_t tokens) = 0;
  virtual void set_mtp_length(int64_t tokens) = 0;
  // Whether entries keep the RoPE dims as bf16 (see above); false = f32.
  virtual bool rope_bf16() const = 0;

  // Window ring of block `block`: the entry of position `pos` (slot pos mod window_size).
  virtual void store_window(int32_t block, int64_t pos, const float* kv) = 0;  // [head_dim]
  virtual void load_window(int32_t block, int64_t pos, float* kv) const = 0;
  // Compressed entry j of block `block` (main compressor), and indexer key j (CSA blocks).
  virtual void store_compressed(int32_t block, int64_t j, const float* entry) = 0;  // [head_dim]
  virtual void load_compressed(int32_t block, int64_t j, float* entry) const = 0;
  virtual void store_index_key(int32_t block, int64_t j, const float* key) = 0;  // [index_dim]
  // Indexer keys j0 .. j0 + n - 1 of block `block` as the rows of one matrix [n, index_dim] for
  // the scoring matmul, in the cache's own number format (f32, bf16, or MXFP4: the compact cache's
  // e2m1 codes and per-32 e8m0 scales), so the matmul kernel decodes them in registers. Copied
  // into `buf` (at least n * index_dim * 4 bytes, the f32 size); the view points into it and
  // dequantizes to exactly the values stored.
  virtual quant::WeightView load_index_keys(int32_t block, int64_t j0, int64_t n,
                                            std::byte* buf) const = 0;
  // The persistent compressor state of a compressed block.
  virtual CompressorState compressor_state(int32_t block, CompressorSlot slot) = 0;
  // Called by the compressor before position `pos` overwrites rows [row0, row0 + n_rows) of that
  // state (its own row, and the shift of a completed overlapping block): a cache that can roll
  // positions back (speculative decoding) saves them first. The window ring and the entries go
  // through the store_* calls above, which the cache sees anyway.
  virtual void will_write_compressor_rows(int32_t block, CompressorSlot slot, int64_t pos,
                                          int64_t row0, int64_t n_rows) = 0;
};

}  // namespace frugal::v4
