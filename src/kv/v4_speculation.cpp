// The undo log of V4SequenceCache (speculative decoding): before a position overwrites a window
// ring slot or compressor state rows, their bytes are saved; rollback() restores them newest first.
// Only in-place overwrites need saving: the compressed entries and indexer keys of positions past
// the kept length are outside what the cache holds (snapshot() and every load stop at the length),
// and the next pass over those positions writes them again.
#include <algorithm>
#include <cstring>

#include "kv/v4_cache.h"

namespace frugal::kv {

// Worst case of one position over all blocks: its window slot, and per compressor its own rows
// (kv and score) plus, when it completes an overlapping block, the r rows of the shift.
uint64_t V4SequenceCache::undo_bytes_per_position() const {
  uint64_t bytes = 0;
  for (const Block& b : blocks_) {
    bytes += entry_.bytes();
    for (const v4::CompressorState* s : {&b.main, &b.indexer}) {
      if (s->kv_state == nullptr) continue;
      const int64_t r = b.csa ? s->rows / 2 : s->rows;
      const int64_t rows = 1 + (b.csa ? r : 0);
      bytes += 2 * static_cast<uint64_t>(rows * s->cols) * sizeof(float);
    }
  }
  return bytes;
}

Status V4SequenceCache::begin_speculation(int64_t max_positions) {
  if (max_positions < 1) return invalid_argument("kv cache: speculation needs >= 1 position");
  if (undo_.active) {
    return invalid_argument("kv cache: a speculation is already open (rollback or end it first)");
  }
  // Main and MTP positions each up to max_positions; records: a window slot and two regions per
  // compressor write (kv, score), at most three compressor writes per compressor and position.
  const uint64_t bytes = 2 * static_cast<uint64_t>(max_positions) * undo_bytes_per_position();
  const uint64_t records = 2 * static_cast<uint64_t>(max_positions) * blocks_.size() * 9;
  if (undo_.saved.size() < bytes) undo_.saved.resize(bytes);
  if (undo_.records.capacity() < records) undo_.records.reserve(records);
  undo_.records.clear();
  undo_.used = 0;
  undo_.length0 = length_;
  undo_.mtp_length0 = mtp_length_;
  undo_.active = true;
  return ok_status();
}

void V4SequenceCache::save_for_undo(int32_t block, int64_t pos, std::byte* target, uint64_t bytes) {
  FRUGAL_CHECK_MSG(
      undo_.used + bytes <= undo_.saved.size() && undo_.records.size() < undo_.records.capacity(),
      "kv cache: more positions than begin_speculation allowed");
  std::memcpy(undo_.saved.data() + undo_.used, target, bytes);
  undo_.records.push_back(
      {.target = target, .offset = undo_.used, .bytes = bytes, .pos = pos, .block = block});
  undo_.used += bytes;
}

void V4SequenceCache::will_write_compressor_rows(int32_t block, v4::CompressorSlot slot,
                                                 int64_t pos, int64_t row0, int64_t n_rows) {
  if (!undo_.active) return;
  const v4::CompressorState s = compressor_state(block, slot);
  const uint64_t bytes = static_cast<uint64_t>(n_rows * s.cols) * sizeof(float);
  save_for_undo(block, pos, reinterpret_cast<std::byte*>(s.kv_state + row0 * s.cols), bytes);
  save_for_undo(block, pos, reinterpret_cast<std::byte*>(s.score_state + row0 * s.cols), bytes);
}

Status V4SequenceCache::rollback(int64_t length, int64_t mtp_length) {
  if (!undo_.active) return invalid_argument("kv cache rollback: no speculation was begun");
  if (length < undo_.length0 || length > length_ || mtp_length < undo_.mtp_length0 ||
      mtp_length > mtp_length_) {
    return invalid_argument("kv cache rollback to " + std::to_string(length) + " / MTP " +
                            std::to_string(mtp_length) + ": must lie between " +
                            std::to_string(undo_.length0) + " / " +
                            std::to_string(undo_.mtp_length0) + " and " + std::to_string(length_) +
                            " / " + std::to_string(mtp_length_));
  }
  // Per block the records are in position order, so those of the dropped positions are a suffix;
  // restoring them newest first undoes repeated writes of one region too.
  for (auto it = undo_.records.rbegin(); it != undo_.records.rend(); ++it) {
    const int64_t keep = it->block >= n_main_blocks_ ? mtp_length : length;
    if (it->pos >= keep) std::memcpy(it->target, undo_.saved.data() + it->offset, it->bytes);
  }
  length_ = length;
  mtp_length_ = mtp_length;
  end_speculation();
  return ok_status();
}

void V4SequenceCache::end_speculation() {
  undo_.active = false;
  undo_.records.clear();
  undo_.used = 0;
}

}  // namespace frugal::kv
