// y = x W^T for the block-scaled formats (FP8 e4m3 128x128, MXFP4 e2m1 1x32), for decode (m = 1,
// memory-bound: the target is the machine's read bandwidth) and small token groups. Written once
// against the target vocabulary (simd/target.h); rows and tokens per register block come from the
// target header.
//
// Weights are decoded in registers and never written out. Up to kMaxTokens tokens share each
// decoded vector; x is prepared once per pass so the inner loop is decode + FMA only:
//  - FP8: a 128x128 block has one power-of-two scale, so for the 128 rows of a block row x is
//    pre-multiplied by scale * 2^8 (exact) and the e4m3 -> f32 decode (values * 2^-8) needs no
//    scaling.
//  - MXFP4: x is permuted into the lane order the nibble decode produces (fp4_order); the per-32
//    scales are applied per chunk (one multiply per chunk and row).
// Accumulation is f32; results differ from the scalar oracle only by summation order.
#include "kernels/simd/matmul.h"

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {
namespace {

using namespace matmul_detail;

// Columns per pass for T tokens: the prepared x of T tokens fills kPrepFloats.
int64_t pass_cols(int tokens) {
  const int64_t kc = kPrepFloats / tokens / 128 * 128;
  return kc < 128 ? 128 : kc;
}

// Software prefetch: while R rows are being read, the rows of the next group (the same columns,
// R rows further on) are prefetched into L2, one line per 64 bytes read. Rows of V4 matrices are
// 1-16 KiB, so the hardware streamers, which do not cross 4 KiB pages, restart at every row; the
// software stream keeps the memory queue full across those restarts. L2 rather than L1: the L2
// can have more misses in flight than the L1's fill buffers, and a group of f32 rows (4 x 16 KiB)
// would not fit in L1. Measured on a 640 MiB ring of FP8 [4096, 4096], 2 threads (AVX-512):
// 21.1 GB/s without, 25.4 GB/s with (docs/BENCHMARKS.md has every format). (kLine: matmul.h.)

// ---------------------------------------------------------------------------------------------
// FP8

constexpr int64_t kFp8Step = 4 * kLanes;  // codes per fp8_decode4

// R rows of n codes (row stride ldw) against T prepared x rows (stride ldxs, zero padded to a
// multiple of kFp8Step): out[r * T + t] = sum_k xs[t][k] * fp8(w[r][k]).
template <int R, int T>
void fp8_rows(const uint8_t* w, int64_t ldw, const float* xs, int64_t ldxs, int64_t n, float* out) {
  static_assert(kLine % kFp8Step == 0);
  VF acc[R][T];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[r][t] = zero();
  }
  auto step = [&](int r, int64_t k, const VF v[4]) {
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const float* x = xs + t * ldxs + k;
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) acc[r][t] = fmadd(v[q], load(x + kLanes * q), acc[r][t]);
    }
  };
  int64_t k = 0;
  // Step by step, one prefetch per row and line. Rows are independent chains, and each
  // accumulator sees the same FMAs in the same order in both loops.
  if constexpr (kMatmul.fp8_x_once) {
    // The R rows' codes decoded first, then each x vector loaded once for all R rows: 1.07-1.10x
    // at 1-4 tokens; at 8 tokens 1.12x, once the load is kept in a register (load_kept; folded
    // into every FMA, the same loop had run 0.96-0.97x of row by row). docs/BENCHMARKS.md.
    for (; k + kLine <= n; k += kLine) {
#pragma GCC unroll 4
      for (int64_t s = 0; s < kLine; s += kFp8Step) {
        VF v[R][4];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const uint8_t* p = w + r * ldw + k;
          if (s == 0) prefetch_l2(p + R * ldw);
          fp8_decode4(p + s, v[r]);
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const float* x = xs + t * ldxs + k + s;
#pragma GCC unroll 4
          for (int q = 0; q < 4; ++q) {
            // One token (decode) keeps the code it had: with the load kept it measured 0.95-1.01x
            // (BM_Gemv, memory-bound, within the noise), so there is nothing to gain.
            const VF xv = T > 1 ? load_kept(x + kLanes * q) : load(x + kLanes * q);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) acc[r][t] = fmadd(v[r][q], xv, acc[r][t]);
          }
        }
      }
    }
  } else {
    // Row by row within a step, each row loading x again.
    for (; k + kLine <= n; k += kLine) {
#pragma GCC unroll 4
      for (int64_t s = 0; s < kLine; s += kFp8Step) {
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const uint8_t* p = w + r * ldw + k;
          if (s == 0) prefetch_l2(p + R * ldw);
          VF v[4];
          fp8_decode4(p + s, v);
          step(r, k + s, v);
        }
      }
    }
  }
  for (; k < n; k += kFp8Step) {  // first-n decodes: no byte past the row is touched
    for (int r = 0; r < R; ++r) {
      VF v[4];
      fp8_decode4_n(w + r * ldw + k, n - k, v);
      step(r, k, v);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) out[r * T + t] = hsum(acc[r][t]);
  }
}

struct Fp8Group {
  template <int T>
  static void run(const MatmulTask& task, int64_t t0, int64_t r0, int64_t r1, int64_t /*ahead*/) {
    constexpr int R = fp8_rows_for(T);
    alignas(64) float xs[kPrepFloats];
    alignas(64) float part[R * T];
    const int64_t K = task.w.cols, kc = pass_cols(T);
    const int64_t scols = (K + 127) / 128;
    const auto* wdata = static_cast<const uint8_t*>(task.w.data);
    for (int64_t g0 = r0; g0 < r1;) {
      const int64_t g = g0 / 128, g1 = min64(r1, (g + 1) * 128);
      const uint8_t* srow = task.w.scales + g * scols;
      for (int64_t c0 = 0; c0 < K; c0 += kc) {
        const int64_t n = min64(kc, K - c0), npad = (n + kFp8Step - 1) / kFp8Step * kFp8Step;
        for (int t = 0; t < T; ++t) {  // xs[t] = x[t] * 2^8 * block scale, zero padded
          const float* x = task.x + (t0 + t) * task.ldx + c0;
          float* dst = xs + t * kc;
          for (int64_t i = 0; i < npad; i += kLanes) {
            const VF s = set1(e8m0_f32(srow[(c0 + i) / 128]) * 256.0f);
            store(dst + i, mul(load_n(x + i, n - i), s));
          }
        }
        int64_t r = g0;
        for (; r + R <= g1; r += R) {
          fp8_rows<R, T>(wdata + r * K + c0, K, xs, kc, n, part);
          store_rows<R, T>(part, task.y + t0 * task.ldy, task.ldy, r, c0 == 0);
        }
        for (; r < g1; ++r) {
          fp8_rows<1, T>(wdata + r * K + c0, K, xs, kc, n, part);
          store_rows<1, T>(part, task.y + t0 * task.ldy, task.ldy, r, c0 == 0);
        }
      }
      g0 = g1;
    }
  }
};

// ---------------------------------------------------------------------------------------------
// MXFP4

constexpr int64_t kChunk = 2 * kFp4ChunkBytes;   // elements per decoded chunk (8 vectors)
constexpr int64_t kChunkScales = kChunk / 32;     // scale blocks per chunk
static_assert(kChunk == 8 * kLanes && kChunk % 32 == 0 && kLine % kFp4ChunkBytes == 0);

// Once per 64 bytes of a row: the next row group (see kLine), and with kFp4PrefetchL1 into L1
// plus the group 8 groups ahead into L2 (the target header says why).
FRUGAL_SIMD_INLINE void fp4_prefetch(const uint8_t* p, int64_t group_bytes) {
  if constexpr (kFp4PrefetchL1) {
    prefetch_l1(p + group_bytes);
    prefetch_l2(p + 8 * group_bytes);
  } else {
    prefetch_l2(p + group_bytes);
  }
}

// The scale lines of R rows 8 groups ahead (the weights' L2 distance above), once per group and
// pass: rows of 2,048 bytes carry 128 bytes of scales each, a separate stream that the group's
// first chunk used to wait for (a demand miss to memory once per 4 KiB group). Measured
// (BM_Gemv/mxfp4/avx512, [2048, 4096] ring, AMD Zen 5): one thread 22.9-24.0 -> 28.8-30.2 GB/s,
// the core's rate from L2 (30-31); a distance of 2 or 32 groups, or the next group into L1, did
// as well (docs/BENCHMARKS.md, "MXFP4 scales prefetched").
FRUGAL_SIMD_INLINE void fp4_prefetch_scales(const uint8_t* s, int64_t lds, int rows,
                                            int64_t n_scales) {
  const uint8_t* ahead = s + 8 * rows * lds;
  for (int r = 0; r < rows; ++r) {
    const uint8_t* first = ahead + r * lds;
    const uint8_t* line = first - reinterpret_cast<uintptr_t>(first) % kLine;
    for (; line < first + n_scales; line += kLine) prefetch_l2(line);
  }
}

// R rows, one pass of n elements (n even) starting at packed byte pointer w (row stride ldw bytes)
// and scale pointer s (row stride lds). A pass that does not end at the row's end is a whole
// number of chunks.
template <int R, int T>
void fp4_rows(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, const float* xs,
              int64_t ldxs, int64_t n, float* out) {
  const int64_t bytes = n / 2, n_chunks = (bytes + kFp4ChunkBytes - 1) / kFp4ChunkBytes;
  // Whole chunks are loaded plainly; a partial one at the row's end first-n.
  const int64_t n_plain = bytes / kFp4ChunkBytes;
  const int64_t n_scales = (n + 31) / 32;
  VF acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = zero();
  }
  VF loaded[R];  // scales of kFp4ScaleChunks chunks per row
  for (int r = 0; r < R; ++r) loaded[r] = zero();
  fp4_prefetch_scales(s, lds, R, n_scales);
  // Chunk c of all R rows from their raw loads: every x vector loaded is used by all R rows.
  auto chunk = [&](int64_t c, const Fp4Raw raw[R]) {
    VF sv[R];
    const int i = static_cast<int>(c % kFp4ScaleChunks);
    for (int r = 0; r < R; ++r) {
      if (i == 0) {
        const int64_t s0 = c * kChunkScales;
        loaded[r] = fp4_scales_load(s + r * lds + s0, n_scales - s0);
      }
      sv[r] = fp4_chunk_scale(loaded[r], i);
    }
    const float* x0 = xs + c * kChunk;
    if constexpr (T == 1 && kMatmul.fp4_x_once) {
      // All R rows decoded first, then each x vector loaded once for all of them: per row two
      // chains, then one FMA applies the row's block scales (the same FMAs in the same order as
      // row by row, below). GCC folds the x loads into each row's FMA here; kept in a register
      // (load_kept) this decode GEMV measured the same (0.95-1.01x), so it is left as it is.
      VF v[R][8];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) fp4_decode(raw[r], v[r]);
      VF a[R], b[R];
      {
        const VF x0v = load(x0), x1v = load(x0 + kLanes);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          a[r] = mul(v[r][0], x0v);
          b[r] = mul(v[r][1], x1v);
        }
      }
#pragma GCC unroll 3
      for (int j = 2; j < 8; j += 2) {
        const VF xa = load(x0 + kLanes * j), xb = load(x0 + kLanes * (j + 1));
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          a[r] = fmadd(v[r][j], xa, a[r]);
          b[r] = fmadd(v[r][j + 1], xb, b[r]);
        }
      }
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][0] = fmadd(add(a[r], b[r]), sv[r], acc[r][0]);
    } else if constexpr (T == 1) {
      // Row by row: two chains, then one FMA applies the row's block scales.
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        VF v[8];
        fp4_decode(raw[r], v);
        VF a = mul(v[0], load(x0)), b = mul(v[1], load(x0 + kLanes));
#pragma GCC unroll 3
        for (int j = 2; j < 8; j += 2) {
          a = fmadd(v[j], load(x0 + kLanes * j), a);
          b = fmadd(v[j + 1], load(x0 + kLanes * (j + 1)), b);
        }
        acc[r][0] = fmadd(add(a, b), sv[r], acc[r][0]);
      }
    } else {
      // Vector index j outermost: one decoded vector per row is live, so the R x T accumulators
      // fit next to the raw loads; each x vector serves all R rows. Measured (kernels_bench
      // BM_Matmul/mxfp4, AVX-512, 2 threads): m = 4 148 -> 178 GFLOP/s.
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        VF v[R];
        for (int r = 0; r < R; ++r) v[r] = mul(fp4_decode_one(raw[r], j), sv[r]);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const float* xp = x0 + t * ldxs + kLanes * j;
          const VF xj = R > 1 ? load_kept(xp) : load(xp);
#pragma GCC unroll 4
          for (int r = 0; r < R; ++r) acc[r][t] = fmadd(v[r], xj, acc[r][t]);
        }
      }
    }
  };
  for (int64_t c = 0; c < n_plain; ++c) {
    Fp4Raw raw[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = w + r * ldw + kFp4ChunkBytes * c;
      if ((c * kFp4ChunkBytes) % kLine == 0) fp4_prefetch(p, R * ldw);
      raw[r] = fp4_load(p);
    }
    chunk(c, raw);
  }
  for (int64_t c = n_plain; c < n_chunks; ++c) {
    Fp4Raw raw[R];
    for (int r = 0; r < R; ++r) {
      raw[r] = fp4_load_n(w + r * ldw + kFp4ChunkBytes * c, bytes - kFp4ChunkBytes * c);
    }
    chunk(c, raw);
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) out[r * T + t] = hsum(acc[r][t]);
  }
}

// Each chunk of x[0..n) permuted into fp4_order, zero padded.
void fp4_prepare_x(const float* x, int64_t n, float* xs) {
  for (int64_t c = 0; c < n; c += kChunk) {
    alignas(64) float tail[kChunk];
    const float* src = x + c;
    if (n - c < kChunk) {
      for (int64_t i = 0; i < kChunk; ++i) tail[i] = c + i < n ? x[c + i] : 0.0f;
      src = tail;
    }
    fp4_prepare(src, xs + c);
  }
}

struct Fp4Group {
  template <int T>
  static void run(const MatmulTask& task, int64_t t0, int64_t r0, int64_t r1, int64_t /*ahead*/) {
    constexpr int R = fp4_rows_for(T);
    alignas(64) float xs[kPrepFloats];
    alignas(64) float part[R * T];
    const int64_t K = task.w.cols, kc = pass_cols(T);
    const int64_t ldw = K / 2, lds = (K + 31) / 32;
    const auto* wdata = static_cast<const uint8_t*>(task.w.data);
    for (int64_t c0 = 0; c0 < K; c0 += kc) {
      const int64_t n = min64(kc, K - c0);
      for (int t = 0; t < T; ++t) fp4_prepare_x(task.x + (t0 + t) * task.ldx + c0, n, xs + t * kc);
      const uint8_t* wp = wdata + c0 / 2;
      const uint8_t* sp = task.w.scales + c0 / 32;
      int64_t r = r0;
      for (; r + R <= r1; r += R) {
        fp4_rows<R, T>(wp + r * ldw, ldw, sp + r * lds, lds, xs, kc, n, part);
        store_rows<R, T>(part, task.y + t0 * task.ldy, task.ldy, r, c0 == 0);
      }
      for (; r < r1; ++r) {
        fp4_rows<1, T>(wp + r * ldw, ldw, sp + r * lds, lds, xs, kc, n, part);
        store_rows<1, T>(part, task.y + t0 * task.ldy, task.ldy, r, c0 == 0);
      }
    }
  }
};

constexpr auto kFp8Fns = group_fns<Fp8Group>(std::make_integer_sequence<int, kMaxTokens>());
constexpr auto kFp4Fns = group_fns<Fp4Group>(std::make_integer_sequence<int, kMaxTokens>());

}  // namespace

void matmul_fp8(const MatmulTask& task, int64_t r0, int64_t r1) {
  if (task.m >= kGemmMinTokens) {
    gemm_many_tokens(task, r0, r1);
    return;
  }
  run_groups(task, r0, r1, kFp8Fns.at, kMaxTokens, task.w.cols, 128, 128, false);
}

void matmul_mxfp4(const MatmulTask& task, int64_t r0, int64_t r1) {
  if (task.m >= kFp4GemmMinTokens) {
    gemm_many_tokens(task, r0, r1);
    return;
  }
  run_groups(task, r0, r1, kFp4Fns.at, kMaxTokens, task.w.cols / 2 + task.w.cols / 32 + 1,
             128, 128, false);
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
