// The V4 MoE layer (doc §2.7; reference Gate.forward, Expert.forward, MoE.forward): hash routing
// by token id on the first n_hash_layers blocks, score + bias top-k after; routing weights from
// the unbiased scores, applied before w2; clamped SwiGLU; the shared expert added last.
//
// The chunk's tokens are routed first, then grouped by expert (counting sort, tokens ascending
// within an expert), so that every selected expert's weights are read once per chunk and
// multiplied with all of its tokens at once. Experts are visited in ascending id, so each token
// still receives its experts' outputs in the reference's order (expert id), then the shared
// expert's.
#include <algorithm>
#include <cmath>

#include "kernels/ref/v4_ops.h"
#include "model/v4/layers.h"

namespace frugal::v4 {
namespace {

// Most experts a streamed pass takes from its source at once (one per thread).
constexpr int64_t kMaxRound = 64;

namespace v4ref = kernels::v4ref;

// Gate.forward's score function on one token's router outputs, in place.
void score(const Ctx& ctx, float* gate) {
  const DeepSeekV4Config& c = ctx.w.config;
  const int32_t n_exp = static_cast<int32_t>(c.n_routed_experts);
  switch (c.score_func) {
    case ScoreFunc::kSoftmax:
      ctx.k.softmax(gate, 1, n_exp);
      break;
    case ScoreFunc::kSigmoid:
      for (int32_t e = 0; e < n_exp; ++e) gate[e] = v4ref::sigmoid(gate[e]);
      break;
    case ScoreFunc::kSqrtSoftplus:
      for (int32_t e = 0; e < n_exp; ++e) gate[e] = std::sqrt(v4ref::softplus(gate[e]));
      break;
  }
}

// The experts `m` routes one token to: tid2eid by token id (hash layers), else the top-k of
// scores + bias (gate: the scored router outputs of the token).
void select(const Ctx& ctx, const MoeWeights& m, const float* gate, int32_t token, int32_t* esel) {
  const DeepSeekV4Config& c = ctx.w.config;
  const int32_t n_exp = static_cast<int32_t>(c.n_routed_experts);
  const int32_t topk = static_cast<int32_t>(c.n_activated_experts);
  Scratch& s = ctx.s;
  if (m.tid2eid != nullptr) {  // hash layer: indices = tid2eid[input_ids]
    std::copy_n(m.tid2eid + static_cast<int64_t>(token) * topk, topk, esel);
  } else {  // scores + bias select; the bias never enters the weights
    for (int32_t e = 0; e < n_exp; ++e) s.biased[e] = gate[e] + m.bias[e];
    ctx.k.top_k(s.biased, n_exp, topk, esel, nullptr);
  }
}

// mirrors Gate.forward for token i, from its router outputs s.gate[i]: s.esel[i] [topk] expert
// ids and s.eweight[i] [topk] routing weights.
void route(const Ctx& ctx, int32_t block, int64_t i, int32_t token) {
  const DeepSeekV4Config& c = ctx.w.config;
  const MoeWeights& m = ctx.w.blocks[static_cast<size_t>(block)].ffn;
  Scratch& s = ctx.s;
  const int32_t n_exp = static_cast<int32_t>(c.n_routed_experts);
  const int32_t topk = static_cast<int32_t>(c.n_activated_experts);
  float* gate = s.gate + i * n_exp;
  int32_t* esel = s.esel + i * topk;
  float* weights = s.eweight + i * topk;
  score(ctx, gate);
  select(ctx, m, gate, token, esel);
  float sum = 0.0f;
  for (int32_t j = 0; j < topk; ++j) sum += weights[j] = gate[esel[j]];
  const bool renorm = c.score_func != ScoreFunc::kSoftmax;  // weights /= weights.sum()
  for (int32_t j = 0; j < topk; ++j) {
    if (renorm) weights[j] /= sum;
    weights[j] *= static_cast<float>(c.route_scale);
  }
}

// mirrors Expert.forward on the m rows of x: eo[t] = w2(weight[t] * swiglu(w1 x[t], w3 x[t])).
// weight == nullptr: 1 for every row (the shared expert). The rows go kMatmulRows at a time
// (matmul_rows' pieces) through eg, eu [min(m, kMatmulRows), moe_inter_dim]: s.eg and s.eu, or a
// thread's own (parallel_experts).
void expert(const Ctx& ctx, const ExpertWeights& e, const float* x, int64_t m, float limit,
            const float* weight, float* eo, float* eg, float* eu) {
  const DeepSeekV4Config& c = ctx.w.config;
  const int64_t inter = c.moe_inter_dim;
  const int64_t pieces = (m + kMatmulRows - 1) / kMatmulRows;
  const int64_t rows = pieces > 0 ? (m + pieces - 1) / pieces : 0;
  for (int64_t r0 = 0; r0 < m; r0 += rows) {
    const int64_t p = std::min(rows, m - r0);
    linear(ctx, e.w1, p, x + r0 * c.dim, eg);  // [p, inter] gate
    linear(ctx, e.w3, p, x + r0 * c.dim, eu);  // [p, inter] up
    for (int64_t t = 0; t < p; ++t) {          // weight before w2
      float* g = eg + t * inter;
      ctx.k.swiglu(g, eu + t * inter, inter, limit, weight ? weight[r0 + t] : 1.0f, g);
    }
    linear(ctx, e.w2, p, eg, eo + r0 * c.dim);  // [p, dim]
  }
}
void expert(const Ctx& ctx, const ExpertWeights& e, const float* x, int64_t m, float limit,
            const float* weight, float* eo) {
  expert(ctx, e, x, m, limit, weight, eo, ctx.s.eg, ctx.s.eu);
}

// Whether the resident routed experts of a pass of n rows run one expert per thread: a pass of at
// most kParallelExpertTokens rows, and the scratch has per-thread buffers, which Scratch::plan
// gives a model on a pool of several threads (with s.epair for such a pass), not with act_quant
// (linear() rounds its input into the one shared s.aq).
bool parallel_experts(const Ctx& ctx, int64_t n) {
  return ctx.s.expert_threads > 1 && n <= kParallelExpertTokens;
}

// Hands the source a prefetch hint for block b: the experts it will route the n tokens to, exact
// from tid2eid for a hash layer, else b's router applied to x [n, dim], the FFN input of the
// block before (its own input is a few residual additions away; BENCHMARKS.md has how often the
// guess is right). Uses s.gate and s.ehint, free once this layer is routed.
void hint_block(const Ctx& ctx, int32_t b, const float* x, const int32_t* ids, int64_t n) {
  const DeepSeekV4Config& c = ctx.w.config;
  const MoeWeights& next = ctx.w.blocks[static_cast<size_t>(b)].ffn;
  Scratch& s = ctx.s;
  const int64_t n_exp = c.n_routed_experts;
  const int64_t topk = c.n_activated_experts;
  if (next.tid2eid == nullptr) matmul_rows(ctx, next.gate, n, x, s.gate);  // [n, E]
  for (int64_t i = 0; i < n; ++i) {
    float* gate = s.gate + i * n_exp;
    if (next.tid2eid == nullptr) score(ctx, gate);
    select(ctx, next, gate, ids[i], s.ehint + i * topk);
  }
  // Only the experts this process holds (expert parallel: the others are not its to read).
  const Shard& shard = ctx.w.shard;
  int64_t kept = 0;
  for (int64_t p = 0; p < n * topk; ++p) {
    if (shard.holds_expert(s.ehint[p])) s.ehint[kept++] = s.ehint[p];
  }
  if (kept > 0) ctx.experts->hint(b, {s.ehint, static_cast<size_t>(kept)}, next.tid2eid != nullptr);
}

bool is_hash(const Ctx& ctx, int32_t b) {
  return b < ctx.w.config.n_layers && ctx.w.blocks[static_cast<size_t>(b)].ffn.tid2eid != nullptr;
}

// The hints of main block b0 and, since a hash layer's routing is a lookup of the token ids that
// is exact however far ahead, of every hash block that follows it back to back (V4: the first
// n_hash_layers), so that their reads queue at once rather than one block at a time. x (the FFN
// input of the block before b0) is read only when b0 is router-routed.
void hint_from(const Ctx& ctx, int32_t b0, const float* x, const int32_t* ids, int64_t n) {
  for (int32_t b = b0; b < ctx.w.config.n_layers && ctx.w.shard.holds_block(b); ++b) {
    hint_block(ctx, b, x, ids, n);
    if (!is_hash(ctx, b) || !is_hash(ctx, b + 1)) break;
  }
}

}  // namespace

void hint_first_block(const Ctx& ctx, int32_t block, const int32_t* ids, int64_t n) {
  if (ctx.experts == nullptr || !ctx.experts->wants_hints() || !is_hash(ctx, block)) return;
  hint_block(ctx, block, nullptr, ids, n);
}

// mirrors MoE.forward: x [n, dim] (ffn_norm output), ids [n] -> out [n, dim].
Status moe_forward(const Ctx& ctx, int32_t block, const float* x, const int32_t* ids, int64_t n,
                   float* out) {
  const DeepSeekV4Config& c = ctx.w.config;
  const MoeWeights& m = ctx.w.blocks[static_cast<size_t>(block)].ffn;
  Scratch& s = ctx.s;
  const int64_t dim = c.dim;
  const int32_t n_exp = static_cast<int32_t>(c.n_routed_experts);
  const int32_t topk = static_cast<int32_t>(c.n_activated_experts);

  matmul_rows(ctx, m.gate, n, x, s.gate);  // [n, E] fp32 scores
  for (int64_t i = 0; i < n; ++i) route(ctx, block, i, ids[i]);
  if (ctx.expert_counts != nullptr) {  // frugal profile
    uint64_t* counts = ctx.expert_counts + static_cast<int64_t>(block) * n_exp;
    for (int64_t p = 0; p < n * topk; ++p) ++counts[s.esel[p]];
  }

  // Counting sort of the (token, expert) pairs by expert; tokens stay ascending per expert.
  std::fill(s.eoff, s.eoff + n_exp + 1, 0);
  for (int64_t p = 0; p < n * topk; ++p) ++s.eoff[s.esel[p] + 1];
  for (int32_t e = 0; e < n_exp; ++e) s.eoff[e + 1] += s.eoff[e];
  for (int64_t i = 0; i < n; ++i) {
    for (int32_t j = 0; j < topk; ++j) {
      const int32_t e = s.esel[i * topk + j];
      const int32_t slot = s.eoff[e]++;
      s.etok[slot] = static_cast<int32_t>(i);
      s.ewt[slot] = s.eweight[i * topk + j];
    }
  }
  for (int32_t e = n_exp; e > 0; --e) s.eoff[e] = s.eoff[e - 1];  // ends -> starts
  s.eoff[0] = 0;

  // Expert e on its tokens' rows of x -> its output rows at dst [cnt, dim].
  const float limit = static_cast<float>(c.swiglu_limit);
  auto run_expert = [&](const ExpertWeights& w, int32_t e, float* dst) {
    const int32_t b = s.eoff[e], cnt = s.eoff[e + 1] - b;
    for (int32_t r = 0; r < cnt; ++r) {
      std::copy_n(x + static_cast<int64_t>(s.etok[b + r]) * dim, dim, s.xg + r * dim);
    }
    expert(ctx, w, s.xg, cnt, limit, s.ewt + b, dst);
  };
  // The same on the pool's thread `thread` with that thread's buffers (at most
  // kParallelExpertRows rows): into its rows of s.epair.
  auto run_expert_on = [&](const ExpertWeights& w, int32_t e, int thread) {
    const int32_t b = s.eoff[e], cnt = s.eoff[e + 1] - b;
    float* xg = s.pxg + thread * kParallelExpertRows * dim;
    const int64_t ldg = kParallelExpertRows * c.moe_inter_dim;
    for (int32_t r = 0; r < cnt; ++r) {
      std::copy_n(x + static_cast<int64_t>(s.etok[b + r]) * dim, dim, xg + r * dim);
    }
    expert(ctx, w, xg, cnt, limit, s.ewt + b, s.epair + static_cast<int64_t>(b) * dim,
           s.peg + thread * ldg, s.peu + thread * ldg);
  };
  // out[t] += the rows of expert e (in ascending e: the reference's order).
  auto accumulate = [&](int32_t e, const float* rows) {
    const int32_t b = s.eoff[e], cnt = s.eoff[e + 1] - b;
    for (int32_t r = 0; r < cnt; ++r) {
      float* y = out + static_cast<int64_t>(s.etok[b + r]) * dim;
      const float* v = rows + static_cast<int64_t>(r) * dim;
      for (int64_t d = 0; d < dim; ++d) y[d] += v[d];
    }
  };

  std::fill(out, out + n * dim, 0.0f);
  const Shard& shard = ctx.w.shard;
  if (ctx.experts == nullptr && shard.expert_ranks == 1 && parallel_experts(ctx, n)) {
    // A small pass (a batched decode step): its experts with few rows go one per thread, as many
    // as make whole rounds of the threads, each expert's three matmuls on the thread that took it
    // (a kernel call from inside the pool runs on the calling thread); the others, each split
    // across the threads. Every row of a matmul is the same sums on one thread as split, so the
    // outputs are those of the path below; they go to their rows of s.epair and are added in
    // ascending id as there.
    ThreadPool& pool = *ctx.k.pool();
    const int64_t threads = pool.n_threads();
    int32_t small = 0;  // s.eused[0, small): the experts with at most kParallelExpertRows rows
    for (int32_t e = 0; e < n_exp; ++e) {
      const int32_t cnt = s.eoff[e + 1] - s.eoff[e];
      if (cnt > 0 && cnt <= kParallelExpertRows) s.eused[small++] = e;
    }
    const int64_t rounds = small / threads * threads;
    pool.parallel_for(rounds, 1, [&](int64_t b, int64_t end, int thread) {
      for (int64_t i = b; i < end; ++i) {
        const int32_t e = s.eused[i];
        run_expert_on(m.experts[static_cast<size_t>(e)], e, thread);
      }
    });
    int64_t seen = 0;  // small experts met so far: s.eused[seen] is the next one
    for (int32_t e = 0; e < n_exp; ++e) {  // the rest, split across the threads
      const int32_t cnt = s.eoff[e + 1] - s.eoff[e];
      if (cnt == 0 || (cnt <= kParallelExpertRows && seen++ < rounds)) continue;
      run_expert(m.experts[static_cast<size_t>(e)], e,
                 s.epair + static_cast<int64_t>(s.eoff[e]) * dim);
    }
    for (int32_t e = 0; e < n_exp; ++e) {
      if (s.eoff[e + 1] > s.eoff[e]) accumulate(e, s.epair + static_cast<int64_t>(s.eoff[e]) * dim);
    }
    ++s.parallel_moe_passes;
  } else if (ctx.experts == nullptr && shard.expert_ranks == 1) {
    // every expert resident here: compute and add in ascending id
    for (int32_t e = 0; e < n_exp; ++e) {
      if (s.eoff[e + 1] == s.eoff[e]) continue;
      run_expert(m.experts[static_cast<size_t>(e)], e, s.eo);
      accumulate(e, s.eo);
    }
  } else {
    // Streamed (computed in the order they arrive) or shared with other processes (expert
    // parallel): each expert into its own rows of s.epair, summed in ascending id at the end.
    int32_t used = 0;  // this process's experts that the rows selected
    for (int32_t e = shard.first_expert; e < shard.end_expert; ++e) {
      if (s.eoff[e + 1] > s.eoff[e]) s.eused[used++] = e;
    }
    if (ctx.experts != nullptr && used > 0) {
      FRUGAL_RETURN_IF_ERROR(ctx.experts->begin_layer(block, {s.eused, static_cast<size_t>(used)}));
      if (ctx.experts->wants_hints()) hint_from(ctx, block + 1, x, ids, n);
      // In a small pass, a whole round of the threads' worth of experts in memory at once runs
      // one per thread, as in the resident pass above (the same sums: every row of a matmul is
      // computed on one thread either way); any other expert split across the threads.
      const int64_t threads =
          parallel_experts(ctx, n)
              ? std::min<int64_t>({ctx.k.pool()->n_threads(), s.expert_threads, kMaxRound})
              : 1;
      HandedExpert got[kMaxRound];
      for (;;) {
        FRUGAL_ASSIGN_OR_RETURN(const size_t k,
                                ctx.experts->next(std::span(got, static_cast<size_t>(threads))));
        if (k == 0) break;
        const bool round = k > 1 && static_cast<int64_t>(k) == threads &&
                           std::all_of(got, got + k, [&](const HandedExpert& h) {
                             return s.eoff[h.expert + 1] - s.eoff[h.expert] <= kParallelExpertRows;
                           });
        if (round) {
          ctx.k.pool()->parallel_for(threads, 1, [&](int64_t b, int64_t end, int thread) {
            for (int64_t i = b; i < end; ++i) run_expert_on(*got[i].weights, got[i].expert, thread);
          });
          ++s.parallel_moe_rounds;
        } else {
          for (size_t i = 0; i < k; ++i) {
            const int32_t e = got[i].expert;
            run_expert(*got[i].weights, e, s.epair + static_cast<int64_t>(s.eoff[e]) * dim);
          }
        }
      }
    } else if (ctx.experts == nullptr) {
      for (int32_t i = 0; i < used; ++i) {
        const int32_t e = s.eused[i];
        run_expert(m.experts[static_cast<size_t>(e)], e,
                   s.epair + static_cast<int64_t>(s.eoff[e]) * dim);
      }
    }
    if (shard.expert_ranks > 1) {  // the other processes' experts' rows
      FRUGAL_RETURN_IF_ERROR(ctx.exchange->gather_expert_rows(
          block, s.epair, {s.eoff, static_cast<size_t>(n_exp) + 1}, dim));
    }
    for (int32_t e = 0; e < n_exp; ++e) {
      if (s.eoff[e + 1] > s.eoff[e]) accumulate(e, s.epair + static_cast<int64_t>(s.eoff[e]) * dim);
    }
  }
  expert(ctx, m.shared, x, n, m.shared_swiglu_limit, nullptr, s.eo);  // shared_experts(x)
  for (int64_t p = 0; p < n * dim; ++p) out[p] += s.eo[p];
  return ok_status();
}

}  // namespace frugal::v4
