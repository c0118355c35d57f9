// AVX-512 attention over cache entries with the sink in the denominator (doc §2.3; oracle
// ref::attention). Per query and block of up to 8 heads, entries are taken in chunks of 64 with
// an online softmax: scores for the chunk (4 entries x 4 heads register tiles over head_dim, 16
// dot products reduced together), the running max and denominator rescaled when the max grows,
// then out += p * kv with 8 heads x 32 dims of accumulators, so each kv row is read once per
// head block. Entries with index -1 are dropped before scoring.
#include "kernels/ref/ref.h"
#include "kernels/x86/avx512_common.h"
#include "kernels/x86/x86.h"

namespace frugal::kernels::avx512 {
namespace {

constexpr int kHeads = 8;          // heads per block
constexpr int kChunk = 64;         // entries per online-softmax step
constexpr int64_t kMaxDim = 1024;  // larger head dims use the oracle
constexpr float kNegInf = -__builtin_inff();

// s[h][e] = (q_h . kv[ent[e]]) * scale for h < kHeads (q rows clamped to n_q valid heads),
// e < ne.
void chunk_scores(const float* q, int n_q, const float* kv, const int32_t* ent, int ne, int64_t d,
                  float scale, float s[kHeads][kChunk]) {
  for (int e0 = 0; e0 < ne; e0 += 4) {
    const float* k[4];
    for (int j = 0; j < 4; ++j)
      k[j] = kv + static_cast<int64_t>(ent[e0 + j < ne ? e0 + j : ne - 1]) * d;
    for (int hq = 0; hq < kHeads; hq += 4) {
      const float* qh[4];
      for (int j = 0; j < 4; ++j) qh[j] = q + (hq + j < n_q ? hq + j : n_q - 1) * d;
      __m512 acc[16];
      for (auto& v : acc) v = _mm512_setzero_ps();
      for (int64_t c = 0; c < d; c += 16) {
        __m512 kv4[4];
        for (int j = 0; j < 4; ++j) kv4[j] = _mm512_loadu_ps(k[j] + c);
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {
          const __m512 qv = _mm512_loadu_ps(qh[i] + c);
#pragma GCC unroll 4
          for (int j = 0; j < 4; ++j) acc[4 * i + j] = _mm512_fmadd_ps(qv, kv4[j], acc[4 * i + j]);
        }
      }
      alignas(64) float r[16];
      _mm512_store_ps(r, hsum16(acc));
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4 && e0 + j < ne; ++j) s[hq + i][e0 + j] = r[4 * i + j] * scale;
      }
    }
  }
}

// o[h][0..d) += sum_e p[h][e] * kv[ent[e]] for all kHeads rows (rows past the block have p = 0).
void chunk_accumulate(const float p[kHeads][kChunk], const float* kv, const int32_t* ent, int ne,
                      int64_t d, float* o) {
  int64_t c = 0;
  for (; c + 32 <= d; c += 32) {
    __m512 acc[kHeads][2];
    for (int h = 0; h < kHeads; ++h) {
      acc[h][0] = _mm512_load_ps(o + h * kMaxDim + c);
      acc[h][1] = _mm512_load_ps(o + h * kMaxDim + c + 16);
    }
    for (int e = 0; e < ne; ++e) {
      const float* k = kv + static_cast<int64_t>(ent[e]) * d + c;
      const __m512 k0 = _mm512_loadu_ps(k), k1 = _mm512_loadu_ps(k + 16);
#pragma GCC unroll 8
      for (int h = 0; h < kHeads; ++h) {
        const __m512 pv = _mm512_set1_ps(p[h][e]);
        acc[h][0] = _mm512_fmadd_ps(pv, k0, acc[h][0]);
        acc[h][1] = _mm512_fmadd_ps(pv, k1, acc[h][1]);
      }
    }
    for (int h = 0; h < kHeads; ++h) {
      _mm512_store_ps(o + h * kMaxDim + c, acc[h][0]);
      _mm512_store_ps(o + h * kMaxDim + c + 16, acc[h][1]);
    }
  }
  for (; c < d; c += 16) {  // d % 32 == 16
    __m512 acc[kHeads];
    for (int h = 0; h < kHeads; ++h) acc[h] = _mm512_load_ps(o + h * kMaxDim + c);
    for (int e = 0; e < ne; ++e) {
      const __m512 k0 = _mm512_loadu_ps(kv + static_cast<int64_t>(ent[e]) * d + c);
      for (int h = 0; h < kHeads; ++h)
        acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(p[h][e]), k0, acc[h]);
    }
    for (int h = 0; h < kHeads; ++h) _mm512_store_ps(o + h * kMaxDim + c, acc[h]);
  }
}

void head_block(const AttentionArgs& a, int64_t t, int64_t hb, int n_q) {
  const int64_t d = a.head_dim;
  const int32_t* idx = a.idx + t * a.n_idx;
  const float* q = a.q + (t * a.n_heads + hb) * d;
  alignas(64) float o[kHeads * kMaxDim];
  alignas(64) float p[kHeads][kChunk];
  int32_t ent[kChunk];
  float mx[kHeads], den[kHeads];
  for (int h = 0; h < kHeads; ++h) {
    mx[h] = kNegInf;
    den[h] = 0.0f;
    for (int64_t c = 0; c < d; c += 16) _mm512_store_ps(o + h * kMaxDim + c, _mm512_setzero_ps());
  }
  for (int64_t i0 = 0; i0 < a.n_idx; i0 += kChunk) {
    int ne = 0;
    for (int64_t i = i0; i < a.n_idx && i < i0 + kChunk; ++i) {
      if (idx[i] >= 0) ent[ne++] = idx[i];
    }
    if (ne == 0) continue;
    chunk_scores(q, n_q, a.kv, ent, ne, d, a.scale, p);
    const __mmask16 last = lanes16(ne - (ne - 1) / 16 * 16);
    for (int h = 0; h < kHeads; ++h) {
      if (h >= n_q) {  // unused rows of the block: no contribution
        for (int e = 0; e < ne; ++e) p[h][e] = 0.0f;
        continue;
      }
      __m512 m = _mm512_set1_ps(kNegInf);
      for (int e = 0; e < ne; e += 16) {
        const __mmask16 k = e + 16 >= ne ? last : static_cast<__mmask16>(0xffff);
        m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(kNegInf), k, p[h] + e));
      }
      const float cmax = _mm512_reduce_max_ps(m);
      if (cmax > mx[h]) {  // rescale what was accumulated against the old max
        const float f = __builtin_expf(mx[h] - cmax);
        den[h] *= f;
        const __m512 fv = _mm512_set1_ps(f);
        for (int64_t c = 0; c < d; c += 16) {
          _mm512_store_ps(o + h * kMaxDim + c,
                          _mm512_mul_ps(_mm512_load_ps(o + h * kMaxDim + c), fv));
        }
        mx[h] = cmax;
      }
      const __m512 mv = _mm512_set1_ps(mx[h]);
      __m512 sum = _mm512_setzero_ps();
      for (int e = 0; e < ne; e += 16) {
        const __mmask16 k = e + 16 >= ne ? last : static_cast<__mmask16>(0xffff);
        const __m512 ev =
            _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p[h] + e), mv)));
        sum = _mm512_add_ps(sum, ev);
        _mm512_mask_storeu_ps(p[h] + e, k, ev);
      }
      den[h] += hsum(sum);
    }
    chunk_accumulate(p, a.kv, ent, ne, d, o);
  }
  for (int h = 0; h < n_q; ++h) {
    float* out = a.out + (t * a.n_heads + hb + h) * d;
    if (mx[h] == kNegInf) {  // no real entry
      for (int64_t c = 0; c < d; c += 16) _mm512_storeu_ps(out + c, _mm512_setzero_ps());
      continue;
    }
    const __m512 dv = _mm512_set1_ps(den[h] + __builtin_expf(a.sink[hb + h] - mx[h]));
    for (int64_t c = 0; c < d; c += 16) {
      _mm512_storeu_ps(out + c, _mm512_div_ps(_mm512_load_ps(o + h * kMaxDim + c), dv));
    }
  }
}

}  // namespace

void attention(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1) {
  if (a.head_dim % 16 != 0 || a.head_dim > kMaxDim) {
    ref::attention(a, t, h0, h1);
    return;
  }
  for (int64_t hb = h0; hb < h1; hb += kHeads) {
    head_block(a, t, hb, static_cast<int>(h1 - hb < kHeads ? h1 - hb : kHeads));
  }
}

}  // namespace frugal::kernels::avx512
