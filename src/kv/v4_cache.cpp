#include "kv/v4_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace frugal::kv {
namespace {

std::string kib(uint64_t b) { return std::to_string(b) + " B"; }

}  // namespace

std::string V4MemoryReport::to_string() const {
  return "window " + kib(window) + ", compressed " + kib(compressed) + ", indexer keys " +
         kib(index_keys) + ", compressor state " + kib(compressor_state) + ", bookkeeping " +
         kib(bookkeeping) + ", total " + kib(total());
}

uint64_t V4CacheSnapshot::bytes() const {
  uint64_t b = 0;
  for (const auto& p : parts) b += p.size();
  return b;
}

Result<std::unique_ptr<V4SequenceCache>> V4SequenceCache::create(const v4::DeepSeekV4Config& c,
                                                                 const V4CacheOptions& options) {
  if (options.page_entries < 1) return invalid_argument("kv cache: page_entries must be >= 1");
  std::unique_ptr<V4SequenceCache> cache(new V4SequenceCache());
  cache->options_ = options;
  cache->window_size_ = c.window_size;
  cache->n_main_blocks_ = c.n_layers;
  cache->entry_ = EntryCodec(options.format, c.head_dim, c.rope_head_dim);
  cache->key_ = IndexKeyCodec(options.format, c.index_head_dim);
  cache->blocks_.resize(static_cast<size_t>(c.n_blocks()));
  for (int64_t i = 0; i < c.n_blocks(); ++i) {
    Block& b = cache->blocks_[static_cast<size_t>(i)];
    b.held = options.holds_block == nullptr || options.holds_block(i);
    b.ratio = c.compress_ratio(i);
    b.csa = b.ratio == 4;
    const int64_t pe = options.page_entries;
    b.window = PagedEntries(cache->entry_.bytes(), pe, &cache->window_stats_);
    b.compressed = PagedEntries(cache->entry_.bytes(), pe, &cache->compressed_stats_);
    b.keys = PagedEntries(cache->key_.bytes(), pe, &cache->key_stats_);
    if (b.ratio == 0) continue;
    const int64_t coff = b.csa ? 2 : 1;  // overlapping compressors double rows and columns
    b.main = {.rows = coff * b.ratio, .cols = coff * c.head_dim};
    if (b.csa) b.indexer = {.rows = 8, .cols = 2 * c.index_head_dim};
    const uint64_t floats = 2 * (b.main.rows * b.main.cols + b.indexer.rows * b.indexer.cols);
    FRUGAL_ASSIGN_OR_RETURN(b.state,
                            AlignedBuffer::allocate(floats * sizeof(float), &cache->state_stats_,
                                                    {.huge_pages = HugePages::kNever}));
    float* p = b.state.as<float>();
    b.main.kv_state = p;
    b.main.score_state = p + b.main.rows * b.main.cols;
    p += 2 * b.main.rows * b.main.cols;
    if (b.csa) {
      b.indexer.kv_state = p;
      b.indexer.score_state = p + b.indexer.rows * b.indexer.cols;
    }
    cache->reset_state(b);
  }
  return cache;
}

// The initial compressor state (reference Compressor.__init__): kv 0, score -inf.
void V4SequenceCache::reset_state(Block& b) {
  for (v4::CompressorState* s : {&b.main, &b.indexer}) {
    if (s->kv_state == nullptr) continue;
    const int64_t n = s->rows * s->cols;
    std::fill(s->kv_state, s->kv_state + n, 0.0f);
    std::fill(s->score_state, s->score_state + n, -std::numeric_limits<float>::infinity());
  }
}

Status V4SequenceCache::reserve(int64_t tokens) {
  for (Block& b : blocks_) {
    if (!b.held) continue;  // another pipeline stage's
    FRUGAL_RETURN_IF_ERROR(b.window.reserve(window_entries(tokens)));
    if (b.ratio > 0) FRUGAL_RETURN_IF_ERROR(b.compressed.reserve(tokens / b.ratio));
    if (b.csa) FRUGAL_RETURN_IF_ERROR(b.keys.reserve(tokens / 4));
  }
  return ok_status();
}

void V4SequenceCache::store_window(int32_t block, int64_t pos, const float* kv) {
  std::byte* slot = blocks_[static_cast<size_t>(block)].window.entry(pos % window_size_);
  if (undo_.active) save_for_undo(block, pos, slot, entry_.bytes());
  entry_.encode(kv, slot);
}
void V4SequenceCache::load_window(int32_t block, int64_t pos, float* kv) const {
  entry_.decode(blocks_[static_cast<size_t>(block)].window.entry(pos % window_size_), kv);
}
void V4SequenceCache::store_compressed(int32_t block, int64_t j, const float* e) {
  entry_.encode(e, blocks_[static_cast<size_t>(block)].compressed.entry(j));
}
void V4SequenceCache::load_compressed(int32_t block, int64_t j, float* e) const {
  entry_.decode(blocks_[static_cast<size_t>(block)].compressed.entry(j), e);
}
void V4SequenceCache::store_index_key(int32_t block, int64_t j, const float* k) {
  key_.encode(k, blocks_[static_cast<size_t>(block)].keys.entry(j));
}
quant::WeightView V4SequenceCache::load_index_keys(int32_t block, int64_t j0, int64_t n,
                                                   std::byte* buf) const {
  const PagedEntries& keys = blocks_[static_cast<size_t>(block)].keys;
  for (int64_t j = 0; j < n; ++j) key_.copy_row(keys.entry(j0 + j), j, n, buf);
  return key_.rows_view(n, buf);
}

v4::CompressorState V4SequenceCache::compressor_state(int32_t block, v4::CompressorSlot slot) {
  Block& b = blocks_[static_cast<size_t>(block)];
  return slot == v4::CompressorSlot::kMain ? b.main : b.indexer;
}

void V4SequenceCache::clear() {
  end_speculation();
  for (Block& b : blocks_) {
    b.window.release();
    b.compressed.release();
    b.keys.release();
    reset_state(b);
  }
  length_ = 0;
  mtp_length_ = 0;
}

V4MemoryReport V4SequenceCache::memory_report() const {
  V4MemoryReport r;
  r.window = window_stats_.bytes();
  r.compressed = compressed_stats_.bytes();
  r.index_keys = key_stats_.bytes();
  r.compressor_state = state_stats_.bytes();
  r.bookkeeping = sizeof(*this) + blocks_.capacity() * sizeof(Block) + undo_.saved.capacity() +
                  undo_.records.capacity() * sizeof(UndoRecord);
  for (const Block& b : blocks_) {
    r.bookkeeping += b.window.table_bytes() + b.compressed.table_bytes() + b.keys.table_bytes();
  }
  return r;
}

Result<V4CacheSnapshot> V4SequenceCache::snapshot() const {
  V4CacheSnapshot s;
  s.format = options_.format;
  s.n_blocks = static_cast<int64_t>(blocks_.size());
  s.length = length_;
  s.mtp_length = mtp_length_;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    // MTP blocks are the last ones and follow mtp_length; a window-only block has no compressor.
    // Another pipeline stage's block holds nothing here (its parts stay empty).
    const int64_t len =
        !b.held ? 0 : (static_cast<int64_t>(i) >= n_main_blocks_ ? mtp_length_ : length_);
    auto copy = [&](const PagedEntries& pe, int64_t n) {
      std::vector<std::byte> out(static_cast<size_t>(n) * pe.entry_bytes());
      for (int64_t j = 0; j < n; ++j) {
        std::memcpy(out.data() + j * pe.entry_bytes(), pe.entry(j), pe.entry_bytes());
      }
      s.parts.push_back(std::move(out));
    };
    copy(b.window, window_entries(len));
    copy(b.compressed, b.ratio > 0 ? len / b.ratio : 0);
    copy(b.keys, b.csa ? len / 4 : 0);
    const std::byte* st = b.state.data();
    s.parts.emplace_back(st, st + b.state.size());
  }
  return s;
}

Status V4SequenceCache::restore(const V4CacheSnapshot& s) {
  if (s.format != options_.format || s.n_blocks != static_cast<int64_t>(blocks_.size()) ||
      s.parts.size() != 4 * blocks_.size()) {
    return invalid_argument(
        std::string("kv cache restore: the snapshot is of a ") + cache_format_name(s.format) +
        " cache with " + std::to_string(s.n_blocks) + " blocks, this cache is " +
        cache_format_name(options_.format) + " with " + std::to_string(blocks_.size()));
  }
  clear();
  FRUGAL_RETURN_IF_ERROR(reserve(std::max(s.length, s.mtp_length)));
  for (size_t i = 0; i < blocks_.size(); ++i) {
    Block& b = blocks_[i];
    auto paste = [](PagedEntries& pe, const std::vector<std::byte>& in) {
      const int64_t n = static_cast<int64_t>(in.size() / std::max<uint64_t>(pe.entry_bytes(), 1));
      for (int64_t j = 0; j < n; ++j) {
        std::memcpy(pe.entry(j), in.data() + j * pe.entry_bytes(), pe.entry_bytes());
      }
    };
    paste(b.window, s.parts[4 * i]);
    paste(b.compressed, s.parts[4 * i + 1]);
    paste(b.keys, s.parts[4 * i + 2]);
    const auto& st = s.parts[4 * i + 3];
    if (st.size() != b.state.size())
      return invalid_argument("kv cache restore: state size differs");
    if (!st.empty()) std::memcpy(b.state.data(), st.data(), st.size());
  }
  length_ = s.length;
  mtp_length_ = s.mtp_length;
  return ok_status();
}

}  // namespace frugal::kv
