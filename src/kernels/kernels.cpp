// The Kernels API: picks the table once, checks arguments, and splits work across the pool.
#include "kernels/kernels.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/log.h"
#include "kernels/op_table.h"
#include "kernels/ref/ref.h"
#include "kernels/simd/simd.h"

namespace frugal::kernels {
namespace {

using quant::WeightFormat;
using quant::WeightView;

constexpr int64_t kMaxHcMult = 16;

// Runs f(begin, end, thread) over [0, n): on the pool when there is one and n is above the grain.
template <typename F>
void split(ThreadPool* pool, int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  if (pool == nullptr || pool->n_threads() <= 1 || n <= grain) {
    f(int64_t{0}, n, 0);
    return;
  }
  pool->parallel_for(n, grain, f);
}

int64_t weight_row_bytes(const WeightView& w) {
  switch (w.format) {
    case WeightFormat::kF32:
      return 4 * w.cols;
    case WeightFormat::kBF16:
      return 2 * w.cols;
    case WeightFormat::kFP8Block:
      return w.cols;
    case WeightFormat::kMXFP4:
      return w.cols / 2 + w.cols / 32;
  }
  return w.cols;
}

#if defined(__x86_64__)
// FRUGAL_BF16_DOT=0 turns the bf16 dot-product GEMM off (anything else, or unset: on).
bool bf16_dot_from_env() {
  const char* v = std::getenv("FRUGAL_BF16_DOT");
  return v == nullptr || std::string_view(v) != "0";
}
#endif

// install_ref, then every SIMD target `isa` includes, lowest first, each over the previous ones.
// kAmx has no tile kernels yet (the machines this is developed on expose no AMX to the guest, so
// none could be run or tested): it runs the AVX-512 table.
void install_tables(Isa isa, OpTable* t) {
  install_ref(t);
#if defined(__x86_64__)
  if (isa_includes(isa, Isa::kAvx2)) simd::avx2::install(t);
  if (isa_includes(isa, Isa::kAvx512)) simd::avx512::install(t);
#elif defined(__aarch64__)
  if (isa_includes(isa, Isa::kNeon)) simd::neon::install(t);
#else
  (void)isa;
#endif
}

}  // namespace

Kernels::Kernels() : table_(std::make_unique<OpTable>()) {}
Kernels::~Kernels() = default;
Kernels::Kernels(Kernels&&) noexcept = default;
Kernels& Kernels::operator=(Kernels&&) noexcept = default;

Result<Kernels> Kernels::create(const KernelOptions& options) {
  Isa isa = Isa::kScalar;
  if (options.isa) {
    isa = *options.isa;
    if (!isa_supported(isa)) {
      return unsupported("kernel ISA " + std::string(isa_name(isa)) +
                         " is not supported by this CPU; the best it supports is " +
                         std::string(isa_name(best_isa())));
    }
  } else {
    FRUGAL_ASSIGN_OR_RETURN(isa, isa_from_env());
  }
  Kernels k;
  k.isa_ = isa;
  k.pool_ = options.pool;
  install_tables(isa, k.table_.get());
#if defined(__x86_64__)
  if (isa_includes(isa, Isa::kAvx512) && cpu_has_bf16_dot() &&
      options.bf16_dot.value_or(bf16_dot_from_env())) {
    install_bf16_dot(k.table_.get());
    // A measuring knob (bench/bf16_bench --sweep): the bf16 path from this many tokens on.
    if (const char* v = std::getenv("FRUGAL_BF16_DOT_MIN_TOKENS"); v != nullptr && *v != '\0') {
      for (int64_t& t : k.table_->bf16_dot.min_tokens) t = std::max<int64_t>(1, std::atoll(v));
    }
  }
#endif

  FRUGAL_LOG_DEBUG("kernels: isa %s, %d thread(s)", std::string(isa_name(isa)).c_str(),
                   options.pool ? options.pool->n_threads() : 1);
  return k;
}

uint64_t Kernels::fma_peak(int64_t iters) const { return table_->fma_peak(iters); }

uint64_t Kernels::read_stream(const uint64_t* p, int64_t n_words) const {
  FRUGAL_CHECK(n_words % 32 == 0);
  return table_->read_stream(p, n_words);
}

void Kernels::matmul(const WeightView& w, int64_t m, const float* x, float* y) const {
  matmul(w, m, x, w.cols, y, w.rows);
}

void Kernels::matmul(const WeightView& w, int64_t m, const float* x, int64_t ldx, float* y,
                     int64_t ldy) const {
  FRUGAL_CHECK(m >= 0 && ldx >= w.cols && ldy >= w.rows);
  if (m == 0 || w.rows == 0) return;
  const int fmt = static_cast<int>(w.format);
  const MatmulTask task{.w = w, .x = x, .ldx = ldx, .y = y, .ldy = ldy, .m = m};
  const MatmulFn fn = table_->matmul[fmt];
  // At least ~256 KiB of weights (or the equivalent work for m tokens) per chunk.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / (weight_row_bytes(w) * m));
  split(pool_, w.rows, grain, [&](int64_t b, int64_t e, int) { fn(task, b, e); });
}

bool Kernels::bf16_dot() const { return table_->bf16_dot.to_bf16 != nullptr; }

int64_t Kernels::bf16_dot_min_tokens(quant::WeightFormat f) const {
  const Bf16DotOps& ops = table_->bf16_dot;
  return ops.matmul[static_cast<int>(f)] != nullptr ? ops.min_tokens[static_cast<int>(f)] : 0;
}

uint64_t Kernels::bf16_dot_peak(int64_t iters) const {
  return bf16_dot() ? table_->bf16_dot.peak(iters) : 0;
}

int64_t Kernels::bf16_x_stride(int64_t cols) { return Bf16DotOps::ldxb_for(cols); }

void Kernels::matmul(const WeightView& w, int64_t m, const float* x, float* y, MatmulInput input,
                     std::span<uint16_t> xb) const {
  matmul(w, m, x, w.cols, y, w.rows, input, xb);
}

void Kernels::matmul(const WeightView& w, int64_t m, const float* x, int64_t ldx, float* y,
                     int64_t ldy, MatmulInput input, std::span<uint16_t> xbuf) const {
  const Bf16DotOps& ops = table_->bf16_dot;
  const MatmulFn fn = ops.matmul[static_cast<int>(w.format)];
  if (input != MatmulInput::kBf16Exact || fn == nullptr ||
      m < ops.min_tokens[static_cast<int>(w.format)] || w.rows == 0) {
    matmul(w, m, x, ldx, y, ldy);
    return;
  }
  FRUGAL_CHECK(ldx >= w.cols && ldy >= w.rows);
  // Subnormals: vdpbf16ps and vcvtne2ps2bf16 flush them. A weight is e4m3 (a multiple of 2^-9)
  // or e2m1 (of 2^-1) times 2^(s - 127); a nonzero bf16 x with biased exponent e is a multiple
  // of 2^(e - 127 - 7). So every product, and every sum of products in any order, is a multiple
  // of 2^(x_grid + w_grid), and when that is >= 2^-126 (and the weights and x themselves are
  // normal) no value the instruction sees or makes can be subnormal: the results equal exact
  // products summed in f32. --act-quant's x are multiples of 2^-31 (scale floor 2^-22, e4m3
  // step 2^-9), so FP8 scale codes >= 41 and MXFP4 codes >= 33 always pass; real checkpoints'
  // codes are near 110-127. Anything else runs the f32 kernels.
  const int range = ops.scale_range(w);
  const int s_lo = range & 0xff, s_hi = range >> 8;
  const int w_grid = s_lo - 127 + (w.format == WeightFormat::kFP8Block ? -9 : -1);
  // MXFP4 is decoded by adding the scale to bf16 exponent fields: 6 x 2^(s - 127) must be finite.
  if (w_grid < -126 || (w.format == WeightFormat::kMXFP4 && s_hi > 252)) {
    matmul(w, m, x, ldx, y, ldy);
    return;
  }
  const int64_t ldxb = Bf16DotOps::ldxb_for(w.cols);
  FRUGAL_CHECK_MSG(static_cast<int64_t>(xbuf.size()) >= m * ldxb,
                   "matmul(MatmulInput::kBf16Exact): xb holds fewer than m * bf16_x_stride(cols)");
  uint16_t* const xb = xbuf.data();
  std::atomic<int> emin{255};
  std::atomic<bool> inexact{false};
  split(pool_, m, std::max<int64_t>(1, 65536 / ldxb), [&](int64_t b, int64_t e, int) {
    const int r = ops.to_bf16(x, b, e, w.cols, ldx, xb, ldxb);
    if (r < 0) inexact.store(true, std::memory_order_relaxed);
    int cur = emin.load(std::memory_order_relaxed);
    while (r >= 0 && r < cur && !emin.compare_exchange_weak(cur, r)) {
    }
  });
#ifndef NDEBUG
  FRUGAL_CHECK_MSG(!inexact.load(), "matmul(MatmulInput::kBf16Exact): x is not exact in bf16");
#endif
  const int e = emin.load();
  if (inexact.load() || e == 0 || (e != 255 && e - 127 - 7 + w_grid < -126)) {
    matmul(w, m, x, ldx, y, ldy);
    return;
  }
  MatmulTask task{.w = w, .x = x, .ldx = ldx, .y = y, .ldy = ldy, .m = m};
  task.xb = xb;
  task.ldxb = ldxb;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / (weight_row_bytes(w) * m));
  split(pool_, w.rows, grain, [&](int64_t b, int64_t e2, int) { fn(task, b, e2); });
}

void Kernels::rms_norm(const float* x, const float* weight, int64_t m, int64_t n, float eps,
                       float* out) const {
  FRUGAL_CHECK(weight != nullptr && n > 0);
  const auto fn = table_->rms_norm;
  split(pool_, m, std::max<int64_t>(1, 65536 / n), [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) fn(x + t * n, weight, n, eps, out + t * n);
  });
}

void Kernels::rms_norm(const float* x, int64_t m, int64_t n, float eps, float* out) const {
  FRUGAL_CHECK(n > 0);
  const auto fn = table_->rms_norm;
  split(pool_, m, std::max<int64_t>(1, 65536 / n), [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) fn(x + t * n, nullptr, n, eps, out + t * n);
  });
}

void Kernels::rope(float* x, int64_t n_vec, int64_t dim, int64_t rope_dim, const float* cos,
                   const float* sin, RopeDirection dir) const {
  FRUGAL_CHECK(rope_dim % 2 == 0 && rope_dim <= dim);
  table_->rope(x, n_vec, dim, rope_dim, cos, sin, dir);
}

void Kernels::softmax(float* x, int64_t m, int64_t n) const {
  const auto fn = table_->softmax;
  split(pool_, m, std::max<int64_t>(1, 65536 / std::max<int64_t>(n, 1)),
        [&](int64_t b, int64_t e, int) {
          for (int64_t t = b; t < e; ++t) fn(x + t * n, n);
        });
}

void Kernels::attention(const AttentionArgs& a) const {
  FRUGAL_CHECK(a.m >= 0 && a.n_heads > 0 && a.head_dim > 0 && a.n_idx >= 0);
  const auto fn = table_->attention;
  // Work items are (query, head) pairs; a chunk runs its heads of each query together and has
  // at least ~2^17 multiply-adds (scores + values), so that small heads (test models, short
  // contexts) are not split into pieces cheaper than handing them to another thread.
  const int64_t per_item = std::max<int64_t>(1, 2 * a.n_idx * a.head_dim);
  const int64_t grain = std::max<int64_t>({1, a.n_heads / 4, (int64_t{1} << 17) / per_item});
  split(pool_, a.m * a.n_heads, grain, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e;) {
      const int64_t t = i / a.n_heads, h0 = i % a.n_heads;
      const int64_t h1 = std::min(a.n_heads, h0 + (e - i));
      fn(a, t, h0, h1);
      i += h1 - h0;
    }
  });
}

namespace {

// Min-heap of (value, index) by "worse" order (smaller value, or equal value and larger index),
// so the root is the worst of the k kept; sift-down after the root is replaced.
struct Cand {
  float v;
  int32_t i;
};
inline bool worse(const Cand& a, const Cand& b) { return a.v < b.v || (a.v == b.v && a.i > b.i); }

void sift_down(Cand* h, int64_t k, int64_t pos) {
  const Cand c = h[pos];
  for (;;) {
    int64_t child = 2 * pos + 1;
    if (child >= k) break;
    if (child + 1 < k && worse(h[child + 1], h[child])) ++child;
    if (!worse(h[child], c)) break;
    h[pos] = h[child];
    pos = child;
  }
  h[pos] = c;
}

}  // namespace

void Kernels::top_k(const float* x, int64_t n, int64_t k, int32_t* idx, float* val) const {
  FRUGAL_CHECK(k >= 0 && k <= n && n <= INT32_MAX);
  if (k == 0) return;
  // The k best seen so far in a heap with the worst on top: O(n log k) worst case, and for
  // inputs in random order most candidates fail the single compare against the cached worst.
  constexpr int64_t kStackCands = 2048;
  if (k > kStackCands) {  // rare: a heap of indices, values looked up
    auto better = [x](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
    for (int32_t i = 0; i < k; ++i) idx[i] = i;
    std::make_heap(idx, idx + k, better);
    for (int64_t i = k; i < n; ++i) {
      const auto c = static_cast<int32_t>(i);
      if (!better(c, idx[0])) continue;
      std::pop_heap(idx, idx + k, better);
      idx[k - 1] = c;
      std::push_heap(idx, idx + k, better);
    }
    std::sort_heap(idx, idx + k, better);
  } else {
    Cand h[kStackCands];
    for (int64_t i = 0; i < k; ++i) h[i] = {x[i], static_cast<int32_t>(i)};
    for (int64_t i = k / 2; i-- > 0;) sift_down(h, k, i);
    float worst = h[0].v;
    for (int64_t i = k; i < n; ++i) {
      // Equal values never replace: the kept one has the lower index.
      if (!(x[i] > worst)) continue;
      h[0] = {x[i], static_cast<int32_t>(i)};
      sift_down(h, k, 0);
      worst = h[0].v;
    }
    for (int64_t end = k; end > 1; --end) {  // heap sort: the worst goes last
      std::swap(h[0], h[end - 1]);
      sift_down(h, end - 1, 0);
    }
    for (int64_t j = 0; j < k; ++j) idx[j] = h[j].i;
  }
  if (val != nullptr) {
    for (int64_t j = 0; j < k; ++j) val[j] = x[idx[j]];
  }
}

void Kernels::swiglu(const float* gate, const float* up, int64_t n, float limit, float scale,
                     float* out) const {
  const auto fn = table_->swiglu;
  split(pool_, n, 1 << 16,
        [&](int64_t b, int64_t e, int) { fn(gate + b, up + b, e - b, limit, scale, out + b); });
}

void Kernels::fp8_round(const float* x, int64_t n, int64_t block, float* out) const {
  FRUGAL_CHECK_MSG(block > 0 && n % block == 0, "fp8_round: block must divide n");
  const auto fn = table_->fp8_round;
  split(pool_, n / block, std::max<int64_t>(1, (1 << 14) / block), [&](int64_t b, int64_t e, int) {
    fn(x + b * block, (e - b) * block, block, out + b * block);
  });
}

void Kernels::hc_pre(const HcPreArgs& a) const {
  const int64_t hc = a.hc_mult, n_mix = (2 + hc) * hc, flat = hc * a.dim;
  FRUGAL_CHECK(hc > 0 && hc <= kMaxHcMult && a.fn.rows == n_mix && a.fn.cols == flat);
  matmul(a.fn, a.m, a.x, flat, a.mixes, n_mix);
  split(pool_, a.m, 8, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      const float* xt = a.x + t * flat;
      float* mixes = a.mixes + t * n_mix;
      const float r =
          1.0f / std::sqrt(table_->sum_squares(xt, flat) / static_cast<float>(flat) + a.norm_eps);
      for (int64_t i = 0; i < n_mix; ++i) mixes[i] *= r;
      float pre[kMaxHcMult];
      ref::hc_split_sinkhorn(mixes, a.scale, a.base, hc, a.sinkhorn_iters, a.hc_eps, pre,
                             a.post + t * hc, a.comb + t * hc * hc);
      table_->weighted_sum(xt, pre, hc, a.dim, a.h + t * a.dim);
    }
  });
}

void Kernels::hc_head(const HcHeadArgs& a) const {
  const int64_t hc = a.hc_mult, flat = hc * a.dim;
  FRUGAL_CHECK(hc > 0 && hc <= kMaxHcMult && a.fn.rows == hc && a.fn.cols == flat);
  matmul(a.fn, a.m, a.x, flat, a.mixes, hc);
  split(pool_, a.m, 8, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      const float* xt = a.x + t * flat;
      const float* mixes = a.mixes + t * hc;
      const float r =
          1.0f / std::sqrt(table_->sum_squares(xt, flat) / static_cast<float>(flat) + a.norm_eps);
      float pre[kMaxHcMult];
      for (int64_t j = 0; j < hc; ++j) {
        pre[j] = 1.0f / (1.0f + std::exp(-(mixes[j] * r * a.scale[0] + a.base[j]))) + a.hc_eps;
      }
      table_->weighted_sum(xt, pre, hc, a.dim, a.h + t * a.dim);
    }
  });
}

void Kernels::hc_post(const HcPostArgs& a) const {
  FRUGAL_CHECK(a.hc_mult > 0 && a.hc_mult <= kMaxHcMult);
  const auto fn = table_->hc_post;
  split(pool_, a.m, 8, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) fn(a, t);
  });
}

}  // namespace frugal::kernels
