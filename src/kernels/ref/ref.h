// The scalar oracle: plain C++ versions of every kernel, written to read like the formulas of the
// architecture doc. They fill the base OpTable (so they are also the kernels of the kScalar ISA
// and of any CPU without SIMD versions) and the tests compare every SIMD variant against them.
#pragma once

#include <cstdint>

#include "kernels/op_table.h"

namespace frugal::kernels::ref {

void matmul(const MatmulTask& task, int64_t r0, int64_t r1);

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);
void rope(float* x, int64_t n_vec, int64_t dim, int64_t rope_dim, const float* cos,
          const float* sin, RopeDirection dir);
void softmax(float* x, int64_t n);
void attention(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1);
void swiglu(const float* gate, const float* up, int64_t n, float limit, float scale, float* out);
// quant::fp8_simulate out of place (the oracle of Kernels::fp8_round).
void fp8_round(const float* x, int64_t n, int64_t block, float* out);
float sum_squares(const float* x, int64_t n);
void weighted_sum(const float* x, const float* c, int64_t k, int64_t n, float* out);
void hc_post(const HcPostArgs& a, int64_t t);

// hc_split_sinkhorn for one token (doc §2.6): mixes[(2 + hc) * hc] -> pre[hc], post[hc],
// comb[hc * hc]. Shared by every ISA (a few hundred flops per token).
void hc_split_sinkhorn(const float* mixes, const float* scale, const float* base, int64_t hc,
                       int sinkhorn_iters, float hc_eps, float* pre, float* post, float* comb);

// Selection oracle: insertion into the sorted output, O(n k). Largest first, ties to lower index.
void top_k(const float* x, int64_t n, int64_t k, int32_t* idx, float* val);

}  // namespace frugal::kernels::ref
