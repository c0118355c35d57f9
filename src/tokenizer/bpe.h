// Byte-level BPE merge step: one pre-tokenized piece (bytes) -> token ids.
//
// Rule (tools/tokenizer/bpe.py, step 5, which is what HF's BPE model does with dropout off): start
// from one symbol per byte; repeatedly join the adjacent pair with the lowest merge rank, the
// leftmost one on ties; stop when no adjacent pair has a merge.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace frugal::tokenizer {

// Reusable buffers for BpeModel::encode_piece (one per encoding thread).
struct BpeScratch {
  std::vector<int32_t> ids;
  std::vector<uint32_t> ranks;
  std::vector<int32_t> prev, next;
  struct HeapEntry {
    uint32_t rank;
    uint32_t pos;  // index of the left symbol = its first byte offset in the piece
    int32_t left, right;
  };
  std::vector<HeapEntry> heap;
};

class BpeModel {
 public:
  static constexpr uint32_t kNoMerge = 0xFFFFFFFFu;
  // Pieces up to this many bytes use the array algorithm; longer ones the heap (O(n log n)).
  static constexpr size_t kSmallPiece = 64;

  struct Merge {
    uint32_t rank;
    int32_t merged;
  };

  // byte_ids[b]: id of the single-byte symbol of byte b.
  void set_byte_ids(const int32_t* byte_ids);
  // Merges in rank order; returns false when the pair is already present (a repeated merge).
  bool add_merge(int32_t left, int32_t right, int32_t merged);
  void finish();  // call once after the last add_merge

  Merge lookup(int32_t left, int32_t right) const;
  size_t merge_count() const { return count_; }

  // Appends the ids of piece [p, p + n) to *out.
  void encode_piece(const uint8_t* p, size_t n, std::vector<int32_t>* out, BpeScratch* s) const {
    if (n <= kSmallPiece) {
      encode_small(p, n, out, s);
    } else {
      encode_heap(p, n, out, s);
    }
  }
  // Both algorithms, public so tests can check they agree on every input.
  void encode_small(const uint8_t* p, size_t n, std::vector<int32_t>* out, BpeScratch* s) const;
  void encode_heap(const uint8_t* p, size_t n, std::vector<int32_t>* out, BpeScratch* s) const;

 private:
  struct Slot {
    uint64_t key;  // (left << 32) | right; kEmpty when unused
    Merge value;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t key_of(int32_t l, int32_t r) {
    return (uint64_t(uint32_t(l)) << 32) | uint32_t(r);
  }
  size_t slot_of(uint64_t key) const {
    return size_t((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_;
  }
  bool insert(uint64_t key, Merge m);
  void grow();

  int32_t byte_ids_[256] = {};
  std::vector<Slot> slots_;  // open addressing, linear probing, load <= 1/2
  size_t mask_ = 0;
  int shift_ = 64;
  size_t count_ = 0;
};

}  // namespace frugal::tokenizer
