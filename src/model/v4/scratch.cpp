// Scratch::plan (layers.h): every activation buffer of the forward pass, carved from the model's
// arena once at creation (or only counted, for the memory plan), so the forward never allocates.
#include <algorithm>

#include "kernels/kernels.h"
#include "model/v4/layers.h"

namespace frugal::v4 {
namespace {

// Takes the scratch buffers from the arena, or (arena == nullptr) only counts their bytes, each
// rounded up to the arena's 64-byte alignment.
class Carver {
 public:
  explicit Carver(Arena* arena) : arena_(arena) {}
  template <typename T>
  void take(T*& p, int64_t count) {
    const uint64_t n = static_cast<uint64_t>(std::max<int64_t>(count, 1));
    p = arena_ != nullptr ? arena_->allocate<T>(n) : nullptr;
    used_ += (n * sizeof(T) + Arena::kAlignment - 1) & ~(Arena::kAlignment - 1);
  }
  uint64_t used() const { return used_; }

 private:
  Arena* arena_;
  uint64_t used_ = 0;
};

// Indexer queries scored by one matmul per key tile: each tile is copied out of the cache once
// per group, and the matmul has index_group * index_n_heads tokens (1,024 at V4-Flash dims).
// Costs index_group * index_n_heads * index_tile floats of dot products (4 MiB at V4-Flash dims).
constexpr int64_t kIndexGroup = 16;

}  // namespace

uint64_t Scratch::plan(const DeepSeekV4Config& c, const ScratchSizes& z, Arena* arena) {
  max_chunk = z.chunk;
  max_span = std::max(z.span, z.chunk);
  max_seq_len = z.seq_len;
  int64_t max_ratio = 4;
  int64_t max_compressed = 0;   // compressed entries one query attends to
  int64_t pool_compressed = 0;  // compressed entries in kvpool
  for (int64_t b = 0; b < c.n_blocks(); ++b) {
    const int64_t r = c.compress_ratio(b);
    max_ratio = std::max(max_ratio, r);
    if (r == 4) {
      max_compressed = std::max(max_compressed, std::min(c.index_topk, z.seq_len / 4));
      pool_compressed =
          std::max(pool_compressed, std::min(z.seq_len / 4, std::max(z.csa_pool, c.index_topk)));
    }
    if (r > 4) {
      max_compressed = std::max(max_compressed, z.seq_len / r);
      pool_compressed = std::max(pool_compressed, z.seq_len / r);
    }
  }
  max_candidates = c.window_size + max_compressed;
  kvpool_rows = c.window_size - 1 + z.chunk + pool_compressed;
  index_group = std::min(kIndexGroup, z.chunk);
  iscores_stride = z.seq_len / 4 + 1;
  const int64_t n = max_chunk;
  const int64_t N = max_span;
  const int64_t d = c.dim;
  const int64_t hc = c.hc_mult;
  const int64_t qd = c.n_heads * c.head_dim;
  const int64_t cd = 2 * std::max(c.head_dim, c.index_head_dim);
  const int64_t topk = c.n_activated_experts;
  Carver cv(arena);
  cv.take(x, N * hc * d);
  cv.take(x_mtp, n * hc * d);
  cv.take(h, N * d);
  cv.take(y, N * d);
  cv.take(mixes, N * c.hc_mix());
  cv.take(post, N * hc);
  cv.take(comb, N * hc * hc);
  cv.take(x_new, n * hc * d);
  cv.take(cq, n * c.q_lora_rank);
  cv.take(q, n * qd);
  cv.take(kv, n * c.head_dim);
  cv.take(o, n * qd);
  cv.take(oa, n * c.o_groups * c.o_lora_rank);
  cv.take(cos, c.rope_head_dim / 2);
  cv.take(sin, c.rope_head_dim / 2);
  cv.take(kvpool, kvpool_rows * c.head_dim);
  cv.take(aidx, n * max_candidates);
  cv.take(cslot, iscores_stride);
  cv.take(csel, kvpool_rows);
  cv.take(ca, n * cd);
  cv.take(cb, n * cd);
  cv.take(entry, std::max(c.head_dim, c.index_head_dim));
  cv.take(pool, 2 * max_ratio);
  cv.take(iq, n * c.index_n_heads * c.index_head_dim);
  cv.take(iw, n * c.index_n_heads);
  cv.take(iscores, index_group * iscores_stride);
  index_tile = std::min<int64_t>(z.seq_len / 4 + 1, z.index_tile);
  cv.take(ikeys, index_tile * c.index_head_dim);
  cv.take(idots, index_group * c.index_n_heads * index_tile);
  cv.take(isel, c.index_topk);
  cv.take(gate, N * c.n_routed_experts);
  cv.take(biased, c.n_routed_experts);
  cv.take(esel, N * topk);
  cv.take(eweight, N * topk);
  cv.take(eoff, c.n_routed_experts + 1);
  cv.take(etok, N * topk);
  cv.take(ewt, N * topk);
  cv.take(xg, N * d);
  cv.take(eg, std::min(N, kMatmulRows) * c.moe_inter_dim);
  cv.take(eu, std::min(N, kMatmulRows) * c.moe_inter_dim);
  cv.take(eo, N * d);
  // (not with act_quant: its linear() rounds into the one shared aq, so experts go one at a time)
  expert_threads = z.threads > 1 && !z.act_quant ? z.threads : 0;
  const int64_t epair_rows =
      z.expert_rows ? N * topk
                    : (expert_threads > 0 ? std::min(N, kParallelExpertTokens) * topk : 0);
  if (epair_rows > 0) cv.take(epair, epair_rows * d);
  cv.take(eused, c.n_routed_experts);
  if (z.expert_rows) cv.take(ehint, N * topk);
  if (expert_threads > 0) {
    cv.take(pxg, expert_threads * kParallelExpertRows * d);
    cv.take(peg, expert_threads * kParallelExpertRows * c.moe_inter_dim);
    cv.take(peu, expert_threads * kParallelExpertRows * c.moe_inter_dim);
  }
  cv.take(ee, n * d);
  cv.take(blogits, z.batch > 1 ? z.batch * c.vocab_size : 0);
  cv.take(bids, n);
  if (z.act_quant) {  // linear(): the rows of one matmul call of the widest input
    aq_rows = std::max(std::min(N, kMatmulRows), n * hc);
    aq_cols = std::max({d, c.moe_inter_dim, c.q_lora_rank, c.o_groups * c.o_lora_rank});
    cv.take(aq, aq_rows * aq_cols);
    cv.take(aqb, aq_rows * kernels::Kernels::bf16_x_stride(aq_cols));
  }
  return cv.used();
}

}  // namespace frugal::v4
