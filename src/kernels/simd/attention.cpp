// Attention over cache entries with the sink in the denominator (doc §2.3; oracle
// ref::attention), written once against the target vocabulary. Per query and block of up to 8
// heads, entries are taken in chunks of 64 with an online softmax: scores for the chunk in
// register tiles of kAttnTileEntries entries x 4 heads over head_dim (the tile's dot products
// reduced kLanes at a time by hsum_each), the running max and denominator rescaled when the max
// grows, then out += p * kv with 8 heads x kAttnDimVecs vectors of accumulators, so each kv row
// is read once per head block. Entries with index -1 are dropped before scoring. The tile sizes
// are the target's (its register count): AVX-512 4 entries and 2 vectors, AVX2 2 and 1.
#include "kernels/ref/ref.h"
#include "kernels/simd/simd.h"
#include "kernels/simd/target.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {
namespace {

constexpr int kHeads = 8;          // heads per block
constexpr int kQTile = 4;          // heads per score tile
constexpr int kETile = kAttnTileEntries;
constexpr int kChunk = 64;         // entries per online-softmax step
constexpr int64_t kMaxDim = 1024;  // larger head dims use the oracle
constexpr float kNegInf = -__builtin_inff();
static_assert(kQTile * kETile % kLanes == 0 && kChunk % kLanes == 0 && kLanes % kETile == 0);

// s[h][e] = (q_h . kv[ent[e]]) * scale for h < n_q, e < ne.
void chunk_scores(const float* q, int n_q, const float* kv, const int32_t* ent, int ne, int64_t d,
                  float scale, float s[kHeads][kChunk]) {
  for (int e0 = 0; e0 < ne; e0 += kETile) {
    const float* k[kETile];
    for (int j = 0; j < kETile; ++j) {
      k[j] = kv + static_cast<int64_t>(ent[e0 + j < ne ? e0 + j : ne - 1]) * d;
    }
    for (int hq = 0; hq < n_q; hq += kQTile) {
      const float* qh[kQTile];
      for (int i = 0; i < kQTile; ++i) qh[i] = q + (hq + i < n_q ? hq + i : n_q - 1) * d;
      VF acc[kQTile * kETile];
      for (auto& v : acc) v = zero();
      for (int64_t c = 0; c < d; c += kLanes) {
        VF kvv[kETile];
        for (int j = 0; j < kETile; ++j) kvv[j] = loadu(k[j] + c);
#pragma GCC unroll 4
        for (int i = 0; i < kQTile; ++i) {
          const VF qv = loadu(qh[i] + c);
#pragma GCC unroll 4
          for (int j = 0; j < kETile; ++j) {
            acc[kETile * i + j] = fmadd(qv, kvv[j], acc[kETile * i + j]);
          }
        }
      }
      alignas(64) float r[kQTile * kETile];
      for (int g = 0; g < kQTile * kETile; g += kLanes) {
        store(r + g, mul(hsum_each(acc + g), set1(scale)));
      }
      // A head's kETile scores are contiguous in r and in s: one small copy per head. In the last
      // tile the entries past ne are scores of the clamped entry; the softmax step overwrites
      // them with its padding (e0 + kETile <= ne rounded up to kLanes).
      const int ni = n_q - hq < kQTile ? n_q - hq : kQTile;
      for (int i = 0; i < ni; ++i) {
        __builtin_memcpy(&s[hq + i][e0], r + kETile * i, kETile * sizeof(float));
      }
    }
  }
}

// o[h][c0..c0 + kV kLanes) += sum_e p[h][e] * kv[ent[e]] for all kHeads rows.
template <int kV>
FRUGAL_SIMD_INLINE void accumulate_cols(const float p[kHeads][kChunk], const float* kv,
                                        const int32_t* ent, int ne, int64_t d, int64_t c0,
                                        float* o) {
  VF acc[kHeads][kV];
  for (int h = 0; h < kHeads; ++h) {
    for (int v = 0; v < kV; ++v) acc[h][v] = load(o + h * kMaxDim + c0 + v * kLanes);
  }
  for (int e = 0; e < ne; ++e) {
    const float* k = kv + static_cast<int64_t>(ent[e]) * d + c0;
    VF kk[kV];
    for (int v = 0; v < kV; ++v) kk[v] = loadu(k + v * kLanes);
#pragma GCC unroll 8
    for (int h = 0; h < kHeads; ++h) {
      const VF pv = set1(p[h][e]);
      for (int v = 0; v < kV; ++v) acc[h][v] = fmadd(pv, kk[v], acc[h][v]);
    }
  }
  for (int h = 0; h < kHeads; ++h) {
    for (int v = 0; v < kV; ++v) store(o + h * kMaxDim + c0 + v * kLanes, acc[h][v]);
  }
}

// o[h][0..d) += sum_e p[h][e] * kv[ent[e]] (rows past the block have p = 0).
void chunk_accumulate(const float p[kHeads][kChunk], const float* kv, const int32_t* ent, int ne,
                      int64_t d, float* o) {
  int64_t c = 0;
  for (; c + kAttnDimVecs * kLanes <= d; c += kAttnDimVecs * kLanes) {
    accumulate_cols<kAttnDimVecs>(p, kv, ent, ne, d, c, o);
  }
  for (; c < d; c += kLanes) accumulate_cols<1>(p, kv, ent, ne, d, c, o);
}

// The softmax step of one head over the chunk's scores p[0..ne): p becomes e^(p - max) (0 past
// ne), the running max, denominator and accumulated output o rescaled when the max grows.
FRUGAL_SIMD_INLINE void online_softmax(float* p, int ne, int64_t d, float* mx, float* den,
                                       float* o) {
  const int nv = (ne + kLanes - 1) / kLanes * kLanes;
  for (int e = ne; e < nv; ++e) p[e] = kNegInf;  // e^-inf = 0: the padding adds nothing
  VF m = set1(kNegInf);
  for (int e = 0; e < nv; e += kLanes) m = max(m, load(p + e));
  const float cmax = hmax(m);
  if (cmax > *mx) {  // rescale what was accumulated against the old max
    const float f = __builtin_expf(*mx - cmax);
    *den *= f;
    const VF fv = set1(f);
    for (int64_t c = 0; c < d; c += kLanes) store(o + c, mul(load(o + c), fv));
    *mx = cmax;
  }
  const VF mv = set1(*mx);
  VF sum = zero();
  for (int e = 0; e < nv; e += kLanes) {
    const VF ev = exp(sub(load(p + e), mv));
    sum = add(sum, ev);
    store(p + e, ev);
  }
  *den += hsum(sum);
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
    for (int64_t c = 0; c < d; c += kLanes) store(o + h * kMaxDim + c, zero());
    // Rows past the block stay 0: they take part in the accumulation but add nothing.
    if (h >= n_q) {
      for (int e = 0; e < kChunk; ++e) p[h][e] = 0.0f;
    }
  }
  for (int64_t i0 = 0; i0 < a.n_idx; i0 += kChunk) {
    int ne = 0;
    for (int64_t i = i0; i < a.n_idx && i < i0 + kChunk; ++i) {
      if (idx[i] >= 0) ent[ne++] = idx[i];
    }
    if (ne == 0) continue;
    chunk_scores(q, n_q, a.kv, ent, ne, d, a.scale, p);
    for (int h = 0; h < n_q; ++h) online_softmax(p[h], ne, d, &mx[h], &den[h], o + h * kMaxDim);
    chunk_accumulate(p, a.kv, ent, ne, d, o);
  }
  for (int h = 0; h < n_q; ++h) {
    float* out = a.out + (t * a.n_heads + hb + h) * d;
    if (mx[h] == kNegInf) {  // no real entry
      for (int64_t c = 0; c < d; c += kLanes) storeu(out + c, zero());
      continue;
    }
    const VF dv = set1(den[h] + __builtin_expf(a.sink[hb + h] - mx[h]));
    for (int64_t c = 0; c < d; c += kLanes) {
      storeu(out + c, div(load(o + h * kMaxDim + c), dv));
    }
  }
}

}  // namespace

void attention(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1) {
  if (a.head_dim % kLanes != 0 || a.head_dim > kMaxDim) {
    ref::attention(a, t, h0, h1);
    return;
  }
  for (int64_t hb = h0; hb < h1; hb += kHeads) {
    head_block(a, t, hb, static_cast<int>(h1 - hb < kHeads ? h1 - hb : kHeads));
  }
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
