// AVX2 attention over cache entries with the sink (oracle ref::attention; design as in
// avx512_attention.cpp): per query and block of up to 8 heads, chunks of 64 entries with an
// online softmax; scores in 2-entry x 4-head register tiles, out += p * kv with 8 heads x 8 dims
// of accumulators. Entries with index -1 are dropped before scoring.
#include "kernels/ref/ref.h"
#include "kernels/x86/avx2_common.h"
#include "kernels/x86/x86.h"

namespace frugal::kernels::avx2 {
namespace {

constexpr int kHeads = 8;
constexpr int kChunk = 64;
constexpr int64_t kMaxDim = 1024;
constexpr float kNegInf = -__builtin_inff();

void chunk_scores(const float* q, int n_q, const float* kv, const int32_t* ent, int ne, int64_t d,
                  float scale, float s[kHeads][kChunk]) {
  for (int e0 = 0; e0 < ne; e0 += 2) {
    const float* k0 = kv + static_cast<int64_t>(ent[e0]) * d;
    const float* k1 = kv + static_cast<int64_t>(ent[e0 + 1 < ne ? e0 + 1 : e0]) * d;
    for (int hq = 0; hq < kHeads && hq < n_q; hq += 4) {
      const float* qh[4];
      for (int j = 0; j < 4; ++j) qh[j] = q + (hq + j < n_q ? hq + j : n_q - 1) * d;
      __m256 acc[8];
      for (auto& v : acc) v = _mm256_setzero_ps();
      for (int64_t c = 0; c < d; c += 8) {
        const __m256 a = _mm256_loadu_ps(k0 + c), b = _mm256_loadu_ps(k1 + c);
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {
          const __m256 qv = _mm256_loadu_ps(qh[i] + c);
          acc[2 * i] = _mm256_fmadd_ps(qv, a, acc[2 * i]);
          acc[2 * i + 1] = _mm256_fmadd_ps(qv, b, acc[2 * i + 1]);
        }
      }
      for (int i = 0; i < 4 && hq + i < n_q; ++i) {
        s[hq + i][e0] = hsum(acc[2 * i]) * scale;
        if (e0 + 1 < ne) s[hq + i][e0 + 1] = hsum(acc[2 * i + 1]) * scale;
      }
    }
  }
}

void chunk_accumulate(const float p[kHeads][kChunk], int n_q, const float* kv, const int32_t* ent,
                      int ne, int64_t d, float* o) {
  for (int64_t c = 0; c < d; c += 8) {
    __m256 acc[kHeads];
    for (int h = 0; h < kHeads; ++h) acc[h] = _mm256_load_ps(o + h * kMaxDim + c);
    for (int e = 0; e < ne; ++e) {
      const __m256 k = _mm256_loadu_ps(kv + static_cast<int64_t>(ent[e]) * d + c);
#pragma GCC unroll 8
      for (int h = 0; h < kHeads; ++h) acc[h] = _mm256_fmadd_ps(_mm256_set1_ps(p[h][e]), k, acc[h]);
    }
    for (int h = 0; h < n_q; ++h) _mm256_store_ps(o + h * kMaxDim + c, acc[h]);
  }
}

void head_block(const AttentionArgs& a, int64_t t, int64_t hb, int n_q) {
  const int64_t d = a.head_dim;
  const int32_t* idx = a.idx + t * a.n_idx;
  const float* q = a.q + (t * a.n_heads + hb) * d;
  alignas(32) float o[kHeads * kMaxDim];
  alignas(32) float p[kHeads][kChunk] = {};
  int32_t ent[kChunk];
  float mx[kHeads], den[kHeads];
  for (int h = 0; h < kHeads; ++h) {
    mx[h] = kNegInf;
    den[h] = 0.0f;
    for (int64_t c = 0; c < d; c += 8) _mm256_store_ps(o + h * kMaxDim + c, _mm256_setzero_ps());
  }
  for (int64_t i0 = 0; i0 < a.n_idx; i0 += kChunk) {
    int ne = 0;
    for (int64_t i = i0; i < a.n_idx && i < i0 + kChunk; ++i) {
      if (idx[i] >= 0) ent[ne++] = idx[i];
    }
    if (ne == 0) continue;
    chunk_scores(q, n_q, a.kv, ent, ne, d, a.scale, p);
    for (int h = 0; h < n_q; ++h) {
      float cmax = kNegInf;
      for (int e = 0; e < ne; ++e) cmax = p[h][e] > cmax ? p[h][e] : cmax;
      if (cmax > mx[h]) {
        const float f = __builtin_expf(mx[h] - cmax);
        den[h] *= f;
        const __m256 fv = _mm256_set1_ps(f);
        for (int64_t c = 0; c < d; c += 8) {
          _mm256_store_ps(o + h * kMaxDim + c,
                          _mm256_mul_ps(_mm256_load_ps(o + h * kMaxDim + c), fv));
        }
        mx[h] = cmax;
      }
      const __m256 mv = _mm256_set1_ps(mx[h]);
      __m256 sum = _mm256_setzero_ps();
      for (int e = 0; e < ne; e += 8) {
        const __m256i k = lanes8(ne - e);
        const __m256 ev = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(p[h] + e, k), mv)),
                                        _mm256_castsi256_ps(k));
        sum = _mm256_add_ps(sum, ev);
        _mm256_maskstore_ps(p[h] + e, k, ev);
      }
      den[h] += hsum(sum);
    }
    chunk_accumulate(p, n_q, a.kv, ent, ne, d, o);
  }
  for (int h = 0; h < n_q; ++h) {
    float* out = a.out + (t * a.n_heads + hb + h) * d;
    if (mx[h] == kNegInf) {
      for (int64_t c = 0; c < d; c += 8) _mm256_storeu_ps(out + c, _mm256_setzero_ps());
      continue;
    }
    const __m256 dv = _mm256_set1_ps(den[h] + __builtin_expf(a.sink[hb + h] - mx[h]));
    for (int64_t c = 0; c < d; c += 8) {
      _mm256_storeu_ps(out + c, _mm256_div_ps(_mm256_load_ps(o + h * kMaxDim + c), dv));
    }
  }
}

}  // namespace

void attention(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1) {
  if (a.head_dim % 8 != 0 || a.head_dim > kMaxDim) {
    ref::attention(a, t, h0, h1);
    return;
  }
  for (int64_t hb = h0; hb < h1; hb += kHeads) {
    head_block(a, t, hb, static_cast<int>(h1 - hb < kHeads ? h1 - hb : kHeads));
  }
}

}  // namespace frugal::kernels::avx2
