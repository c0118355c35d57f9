// The parts of the vocabulary that are the same on every target, written once: with GCC's vector
// extensions (VF is a GCC vector type on every target, so + - * / are the IEEE lane-wise
// operations and compile to the target's single instructions) or in terms of the target's own
// primitives. A target header includes this after it has defined VF, set1, fmadd, fnmadd and
// round_nearest; it is never included on its own.
#pragma once

#include <cstdint>

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {

// Register blocking and pass sizes of the matmul kernels (gemv.cpp, dense.cpp, gemm.cpp); each
// target header defines `inline constexpr MatmulTuning kMatmul` with its values and reasons.
struct MatmulTuning {
  int max_tokens;      // tokens per register-blocked FP8 / MXFP4 GEMV group (<= 8)
  int fp8_rows[8];     // [T - 1]: rows decoded together by the FP8 GEMV for T tokens
  int fp4_rows[8];     // [T - 1]: the same for MXFP4
  bool fp4_prefetch_l1;  // MXFP4: next row group into L1 and 8 groups ahead into L2 (else L2)
  // FP8: the R rows' codes decoded first, then each x vector loaded once for all R rows (R * 4
  // decoded vectors live at once next to R x T accumulators: 32 registers), instead of row by row.
  bool fp8_x_once = false;
  // MXFP4 with one token: the same for the R rows of a group (R * 8 decoded vectors live).
  bool fp4_x_once = false;
  int dense_tokens;    // tokens per f32 group, and bf16 unless bf16_tokens (<= 8)
  int dense_rows[8];   // [T - 1]: rows per dense group
  // [T - 1]: rows per bf16 group where they differ from dense_rows (0: dense_rows[T - 1]); such a
  // group reads whole lines with two chains per row and token (as with bf16_lines).
  int bf16_rows[8] = {};
  int bf16_tokens = 0;  // tokens per bf16 group (<= 8; 0: dense_tokens)
  // bf16 in whole lines (bf16_lines) only for groups of up to this many tokens; larger groups read
  // single vectors, which leaves registers for every token's x.
  int bf16_line_tokens = 8;
  int64_t dense_pass_max;  // most columns of x per dense pass (also <= prep_floats / T)
  bool bf16_lines;     // bf16 in whole 2-vector lines with a second accumulator set
  int64_t gemm_min_tokens;  // from this many tokens on, gemm.cpp (each weight decoded once)
  int gemm_rows;       // GEMM tile rows (2 vectors)
  int gemm_tokens;     // GEMM tokens per register block
  int64_t gemm_cols = 256;  // GEMM tile columns (a multiple of the 128 / 32 scale blocks)
  // MXFP4 from this many tokens on: its GEMV groups decode every weight once per group of
  // max_tokens tokens, which costs more than FP8's decode (0 = gemm_min_tokens).
  int64_t fp4_gemm_min_tokens = 0;
  // MXFP4 below this many tokens: the k-lane GEMM instead of the tile (gemm.cpp): rows decoded in
  // memory order (no transpose), lanes along k, klane_rows x klane_tokens accumulators reduced by
  // transposes once per pass of klane_cols columns (0 = never).
  int64_t fp4_klane_max_tokens = 0;
  int klane_rows = 4;
  int klane_tokens = 4;
  int64_t klane_cols = 1024;
  int64_t prep_floats = 8192;  // f32 values of x prepared per GEMV pass: 32 KiB on the stack
  // With more tokens than one group, rows go in blocks of about this many weight bytes, so that
  // every group after the first reads them from L2.
  int64_t row_block_bytes = int64_t{512} << 10;
  // bf16 / f32 with several token groups: the last group of a row block prefetches the next
  // block into L2 (run_groups), so row blocks should leave room for two in the L2.
  bool dense_block_ahead = false;
  // bf16 / f32 with at least this many tokens go in row blocks (with dense_block_ahead, the next
  // block prefetched) even as a single token group (0: only with several groups).
  int dense_block_min_tokens = 0;
};

FRUGAL_SIMD_INLINE VF zero() { return VF{}; }
FRUGAL_SIMD_INLINE VF add(VF a, VF b) { return a + b; }
FRUGAL_SIMD_INLINE VF sub(VF a, VF b) { return a - b; }
FRUGAL_SIMD_INLINE VF mul(VF a, VF b) { return a * b; }
FRUGAL_SIMD_INLINE VF div(VF a, VF b) { return a / b; }

// kLanes floats at p (load / store: p aligned to the vector size; loadu / storeu: any p).
FRUGAL_SIMD_INLINE VF load(const float* p) { return *reinterpret_cast<const VF*>(p); }
FRUGAL_SIMD_INLINE void store(float* p, VF v) { *reinterpret_cast<VF*>(p) = v; }
// (VFu: VF at float alignment, as the targets' own unaligned types; a memcpy would be an integer
// load, vmovdqu, feeding FP instructions.)
typedef VF VFu __attribute__((__aligned__(alignof(float)), __may_alias__));
FRUGAL_SIMD_INLINE VF loadu(const float* p) { return *reinterpret_cast<const VFu*>(p); }
FRUGAL_SIMD_INLINE void storeu(float* p, VF v) { *reinterpret_cast<VFu*>(p) = v; }

// kLanes floats at p (aligned) in a register, for a kernel that uses one x vector for the FMAs of
// several rows: GCC otherwise folds the load into each FMA as a memory operand (x86), one load
// per row instead of one in all, and the load ports, not the FMAs, set the pace (kept: FP8 with 8
// tokens 1.12x, MXFP4 with 3-4 tokens 1.15-1.35x; docs/BENCHMARKS.md). The empty asm only tells
// the compiler the value is in a register; it emits nothing. ARM FMAs take no memory operand.
FRUGAL_SIMD_INLINE VF load_kept(const float* p) {
  VF v = load(p);
#if defined(__x86_64__)
  asm("" : "+v"(v));
#endif
  return v;
}

// Software prefetch of the line holding p into L1 / into L2 (prefetcht0 / prefetcht1 on x86,
// PLDL1KEEP / PLDL2KEEP on ARM).
FRUGAL_SIMD_INLINE void prefetch_l1(const void* p) { __builtin_prefetch(p, 0, 3); }
FRUGAL_SIMD_INLINE void prefetch_l2(const void* p) { __builtin_prefetch(p, 0, 2); }

// The common part of exp: for x already clamped by the target, returns e^r with *n such that
// e^x = 2^n e^r. n = round(x / ln2); r = x - n ln2 by a two-constant Cody-Waite reduction
// (|r| <= ln2 / 2, exact products: ln2_hi has 16 significant bits and |n| < 2^8); e^r by its
// degree-7 Taylor polynomial (truncation below 6e-9 relative), evaluated by Horner with FMAs.
// The target applies 2^n with its own instruction and range (exp in the target header).
FRUGAL_SIMD_INLINE VF exp_reduced(VF x, VF* n) {
  *n = round_nearest(mul(x, set1(1.44269504088896341f)));
  VF r = fnmadd(*n, set1(0.693145751953125f), x);
  r = fnmadd(*n, set1(1.428606765330187e-06f), r);
  VF p = set1(1.0f / 5040.0f);
  p = fmadd(p, r, set1(1.0f / 720.0f));
  p = fmadd(p, r, set1(1.0f / 120.0f));
  p = fmadd(p, r, set1(1.0f / 24.0f));
  p = fmadd(p, r, set1(1.0f / 6.0f));
  p = fmadd(p, r, set1(0.5f));
  p = fmadd(p, r, set1(1.0f));
  return fmadd(p, r, set1(1.0f));
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
