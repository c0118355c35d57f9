// The vocabulary for aarch64 Advanced SIMD (NEON): 4 f32 lanes in 32 128-bit registers. Included
// only by simd/target.h (after it defines FRUGAL_SIMD_NS = neon and FRUGAL_SIMD_INLINE); the
// kernels in simd/*.cpp are written against these names (see target.h and avx512.h for the
// contract of each). Everything is static and always inlined.
//
// The armv8-a baseline has every instruction used here (FMA, vector divide / sqrt, f16 <-> f32
// conversion, byte table lookups, across-vector reductions), so the NEON target needs no compiler
// flags and runs on every aarch64 Linux CPU (isa.cpp checks HWCAP_ASIMD). SVE, where present, is
// not used: these kernels run unchanged on SVE machines.
//
// Tuning: the blocking constants below are chosen for the register file (32 vector registers, as
// AVX-512 has) and typical aarch64 caches (64 KiB L1D on Neoverse N1/V1/V2, 1-2 MiB L2), not
// measured: the tests run under qemu-user, whose speed says nothing about a real core.
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {

using VF = float32x4_t;
inline constexpr int kLanes = 4;

// ---- f32 vectors (zero, add, sub, mul, div, load, loadu, store, storeu: common.h) ----

FRUGAL_SIMD_INLINE VF set1(float a) { return vdupq_n_f32(a); }
// a * b + c and c - a * b, one rounding each.
FRUGAL_SIMD_INLINE VF fmadd(VF a, VF b, VF c) { return vfmaq_f32(c, a, b); }
FRUGAL_SIMD_INLINE VF fnmadd(VF a, VF b, VF c) { return vfmsq_f32(c, a, b); }
// Nearest integer (ties to even), as f32.
FRUGAL_SIMD_INLINE VF round_nearest(VF a) { return vrndnq_f32(a); }

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS

#include "kernels/simd/target/common.h"

// matmul.h takes the tuning from kMatmul on this target too (transitional, see matmul.h).
#define FRUGAL_SIMD_NEON_KMATMUL 1

namespace frugal::kernels::simd::FRUGAL_SIMD_NS {

// ---- Tuning of the matmul kernels (fields: MatmulTuning in common.h) ----
//
// The kernels' register use is counted in vectors (accumulators + decoded vectors), and NEON has
// 32 vector registers like AVX-512, so the blocking is AVX-512's (avx512.h says why each value):
// GEMV groups of 8 tokens, FP8 4 rows x 1-2 tokens / 2 rows x more, MXFP4 2 rows up to 4 tokens;
// dense 4 tokens x 4 rows; GEMM tile of 2 vectors (8 rows) x 12 tokens, 24 accumulators. The
// decode costs about as many instructions per vector as there (FP8: 2 here, 2.5 on AVX-512), so
// sharing each decoded vector across up to 8 tokens pays as it does there. Two accumulator sets
// for bf16 up to 8 rows x tokens: an FMA has 4 cycles of latency and Neoverse cores issue 2 (N1)
// to 4 (V1, V2) per cycle, so 8-16 independent chains are needed. MXFP4 is prefetched into L2
// only: AVX-512 also prefetches into L1, which measured better there (its decode once read each
// chunk with four line-straddling loads; now, like NEON and AVX2, with one plain load). The defaults (32 KiB of
// prepared x: half of a 64 KiB L1D; 512 KiB row blocks: half of a 1 MiB L2) fit Neoverse N1 / V1
// / V2. Chosen, not measured: see the header comment.
inline constexpr MatmulTuning kMatmul = {.max_tokens = 8,
                                         .fp8_rows = {4, 4, 2, 2, 2, 2, 2, 2},
                                         .fp4_rows = {2, 2, 2, 2, 1, 1, 1, 1},
                                         .fp4_prefetch_l1 = false,
                                         .dense_tokens = 4,
                                         .dense_rows = {4, 4, 4, 4},
                                         .dense_pass_max = 8192,
                                         .bf16_lines = true,
                                         .gemm_min_tokens = 24,
                                         .gemm_rows = 2 * kLanes,
                                         .gemm_tokens = 12};

// Bytes [0, n) of p into a zeroed 16-byte vector (any n); nothing past p + n is read.
FRUGAL_SIMD_INLINE uint8x16_t load_bytes_n(const uint8_t* p, int64_t n) {
  if (n >= 16) return vld1q_u8(p);
  uint8_t tail[16] = {};
  if (n > 0) std::memcpy(tail, p, static_cast<size_t>(n));
  return vld1q_u8(tail);
}

// Lanes [0, n) from p, the rest 0; never reads p[n] or beyond (lane loads, no mask registers).
FRUGAL_SIMD_INLINE VF load_n(const float* p, int64_t n) {
  if (n >= 4) return vld1q_f32(p);
  VF v = vdupq_n_f32(0.0f);
  if (n >= 2) {
    v = vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f));
    if (n == 3) v = vld1q_lane_f32(p + 2, v, 2);
  } else if (n == 1) {
    v = vld1q_lane_f32(p, v, 0);
  }
  return v;
}

// Lanes [0, n) of v to p; nothing at p[n] or beyond is written.
FRUGAL_SIMD_INLINE void store_n(float* p, VF v, int64_t n) {
  if (n >= 4) {
    vst1q_f32(p, v);
  } else if (n >= 2) {
    vst1_f32(p, vget_low_f32(v));
    if (n == 3) vst1q_lane_f32(p + 2, v, 2);
  } else if (n == 1) {
    vst1q_lane_f32(p, v, 0);
  }
}

// max / min: NaN where either is NaN (fmax / fmin; x86's maxps / minps return the second
// operand instead). The kernels never feed them NaN on purpose.
FRUGAL_SIMD_INLINE VF max(VF a, VF b) { return vmaxq_f32(a, b); }
FRUGAL_SIMD_INLINE VF min(VF a, VF b) { return vminq_f32(a, b); }
FRUGAL_SIMD_INLINE VF sqrt(VF a) { return vsqrtq_f32(a); }

// (v0 + v1) + (v2 + v3): faddp twice.
FRUGAL_SIMD_INLINE float hsum(VF v) { return vaddvq_f32(v); }
FRUGAL_SIMD_INLINE float hmax(VF v) { return vmaxvq_f32(v); }

// e^x within a few ulp (exp_reduced in common.h). NEON has no vscalefps: 2^n is applied in two
// exact halves, 2^(n >> 1) then 2^(n - (n >> 1)), each a normal number for x in [-110, 100], so
// the one rounding happens at the end and results overflow to inf and underflow gradually to 0
// like exp (as on AVX-512). e^-110 is below half the smallest subnormal, so -inf gives 0.
FRUGAL_SIMD_INLINE VF exp(VF x) {
  VF n;
  const VF p = exp_reduced(max(min(x, set1(100.0f)), set1(-110.0f)), &n);
  const int32x4_t ni = vcvtq_s32_f32(n);  // n is integral: exact
  const int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
  const int32x4_t bias = vdupq_n_s32(127);
  const VF s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
  const VF s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
  return vmulq_f32(vmulq_f32(p, s1), s2);
}

// In-register transpose of 4 x 4 values: r[i] lane j -> r[j] lane i (trn1/trn2 on 32-bit, then
// on 64-bit elements).
FRUGAL_SIMD_INLINE void transpose(VF r[4]) {
  const float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r[0], r[1]));
  const float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(r[0], r[1]));
  const float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(r[2], r[3]));
  const float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(r[2], r[3]));
  r[0] = vreinterpretq_f32_f64(vtrn1q_f64(t0, t2));
  r[1] = vreinterpretq_f32_f64(vtrn1q_f64(t1, t3));
  r[2] = vreinterpretq_f32_f64(vtrn2q_f64(t0, t2));
  r[3] = vreinterpretq_f32_f64(vtrn2q_f64(t1, t3));
}

// ---- bf16 / f16 -> f32 ----

// A bf16 is the top half of the f32 with the same bits: a widening shift by 16 (exact).
FRUGAL_SIMD_INLINE VF load_bf16(const uint16_t* p) {
  return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

// Copies the first n (0 <= n < 4) 16-bit words of p into a zeroed 4-word vector; never reads past
// p + n.
FRUGAL_SIMD_INLINE uint16x4_t load_u16_n(const uint16_t* p, int64_t n) {
  uint16x4_t h = vdup_n_u16(0);
  if (n >= 1) h = vld1_lane_u16(p, h, 0);
  if (n >= 2) h = vld1_lane_u16(p + 1, h, 1);
  if (n >= 3) h = vld1_lane_u16(p + 2, h, 2);
  return h;
}

FRUGAL_SIMD_INLINE VF load_bf16_n(const uint16_t* p, int64_t n) {
  if (n >= 4) return load_bf16(p);
  return vreinterpretq_f32_u32(vshll_n_u16(load_u16_n(p, n), 16));
}

// 2 * kLanes bf16 values (16 bytes) -> lo (first kLanes), hi.
FRUGAL_SIMD_INLINE void load_bf16x2(const uint16_t* p, VF* lo, VF* hi) {
  const uint16x8_t w = vld1q_u16(p);
  *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(w), 16));
  *hi = vreinterpretq_f32_u32(vshll_high_n_u16(w, 16));
}

FRUGAL_SIMD_INLINE VF load_f16(const uint16_t* p) {
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

FRUGAL_SIMD_INLINE VF load_f16_n(const uint16_t* p, int64_t n) {
  if (n >= 4) return load_f16(p);
  return vcvt_f32_f16(vreinterpret_f16_u16(load_u16_n(p, n)));
}

// ---- FP8 e4m3 ----

// 16 e4m3 codes (4 * kLanes) -> 4 vectors in memory order, times 2^-8, exactly. As on x86, each
// code becomes the f16 with the same sign, exponent and mantissa bits: sign-extended and shifted
// left by 7 (sshll), the mantissa lands in f16 bits 7-9, the exponent in bits 10-13 and the sign
// in bits 14-15; clearing bit 14 leaves an f16 (bias 15) whose value is the e4m3 value (bias 7)
// times 2^-8, subnormals included, and fcvtl converts f16 to f32 exactly. NaN codes (0x7f / 0xff)
// would decode as 480; loaders reject them (quant::check_weight_codes).
FRUGAL_SIMD_INLINE void fp8_decode16(uint8x16_t codes, VF v[4]) {
  const int8x16_t c = vreinterpretq_s8_u8(codes);
  const int16x8_t keep = vdupq_n_s16(static_cast<int16_t>(0xBFFF));
  const float16x8_t lo = vreinterpretq_f16_s16(vandq_s16(vshll_n_s8(vget_low_s8(c), 7), keep));
  const float16x8_t hi = vreinterpretq_f16_s16(vandq_s16(vshll_high_n_s8(c, 7), keep));
  v[0] = vcvt_f32_f16(vget_low_f16(lo));
  v[1] = vcvt_high_f32_f16(lo);
  v[2] = vcvt_f32_f16(vget_low_f16(hi));
  v[3] = vcvt_high_f32_f16(hi);
}

FRUGAL_SIMD_INLINE void fp8_decode4(const uint8_t* p, VF v[4]) { fp8_decode16(vld1q_u8(p), v); }

// The first n codes at p (any n: <= 0 gives zeros), the rest 0; never reads past p + n. A zero
// code decodes to +0.
FRUGAL_SIMD_INLINE void fp8_decode4_n(const uint8_t* p, int64_t n, VF v[4]) {
  fp8_decode16(load_bytes_n(p, n), v);
}

// ---- MXFP4 e2m1 ----
//
// A chunk is kFp4ChunkBytes = 16 packed bytes = 32 elements = one scale block, decoded into 8
// vectors. Every e2m1 value is a bf16 number, so two byte tables (tbl, 16 entries = the 16 codes)
// give the high and low byte of its bf16 pattern; zipping them makes bf16 words and a widening
// shift by 16 (shll) makes the f32s: 18 vector ops per 32 weights after the load, the tables
// staying in registers across a kernel's loop.
//
// Order: the low nibbles (even elements 0, 2, .., 30) make vectors 0-3, the high nibbles (odd
// elements) vectors 4-7; vector j = 4h + q holds elements 2 (4q + d) + h, d = 0..3 (fp4_order).
inline constexpr int64_t kFp4ChunkBytes = 4 * kLanes;
struct Fp4Raw {
  uint8x16_t b;
};
FRUGAL_SIMD_INLINE Fp4Raw fp4_load(const uint8_t* p) { return {vld1q_u8(p)}; }
FRUGAL_SIMD_INLINE Fp4Raw fp4_load_n(const uint8_t* p, int64_t nb) { return {load_bytes_n(p, nb)}; }
// bf16 of 0, .5, 1, 1.5, 2, 3, 4, 6 and their negatives: 0x0000 3F00 3F80 3FC0 4000 4040 4080
// 40C0 (| 0x8000): high and low bytes.
FRUGAL_SIMD_INLINE uint8x16_t fp4_hi_tab() {
  static constexpr uint8_t kHi[16] = {0x00, 0x3f, 0x3f, 0x3f, 0x40, 0x40, 0x40, 0x40,
                                      0x80, 0xbf, 0xbf, 0xbf, 0xc0, 0xc0, 0xc0, 0xc0};
  return vld1q_u8(kHi);
}
FRUGAL_SIMD_INLINE uint8x16_t fp4_lo_tab() {
  static constexpr uint8_t kLo[16] = {0x00, 0x00, 0x80, 0xc0, 0x00, 0x40, 0x80, 0xc0,
                                      0x00, 0x00, 0x80, 0xc0, 0x00, 0x40, 0x80, 0xc0};
  return vld1q_u8(kLo);
}
// Codes (one per byte, < 16) -> their bf16 words: w[0] of codes 0-7, w[1] of codes 8-15.
FRUGAL_SIMD_INLINE void fp4_words(uint8x16_t codes, uint16x8_t w[2]) {
  const uint8x16_t bh = vqtbl1q_u8(fp4_hi_tab(), codes);
  const uint8x16_t bl = vqtbl1q_u8(fp4_lo_tab(), codes);
  w[0] = vreinterpretq_u16_u8(vzip1q_u8(bl, bh));
  w[1] = vreinterpretq_u16_u8(vzip2q_u8(bl, bh));
}
FRUGAL_SIMD_INLINE VF bf16_low(uint16x8_t w) {
  return vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(w), 16));
}
FRUGAL_SIMD_INLINE VF bf16_high(uint16x8_t w) {
  return vreinterpretq_f32_u32(vshll_high_n_u16(w, 16));
}
FRUGAL_SIMD_INLINE uint8x16_t fp4_codes(const Fp4Raw& raw, int h) {
  return h ? vshrq_n_u8(raw.b, 4) : vandq_u8(raw.b, vdupq_n_u8(0x0f));
}
FRUGAL_SIMD_INLINE void fp4_decode(const Fp4Raw& raw, VF v[8]) {
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    uint16x8_t w[2];
    fp4_words(fp4_codes(raw, h), w);
#pragma GCC unroll 2
    for (int u = 0; u < 2; ++u) {
      v[4 * h + 2 * u] = bf16_low(w[u]);
      v[4 * h + 2 * u + 1] = bf16_high(w[u]);
    }
  }
}
// Vector j of fp4_decode alone (j a constant after unrolling; the shared lookups of several j
// are merged by the compiler).
FRUGAL_SIMD_INLINE VF fp4_decode_one(const Fp4Raw& raw, int j) {
  uint16x8_t w[2];
  fp4_words(fp4_codes(raw, j / 4), w);
  const uint16x8_t words = w[(j / 2) % 2];
  return j % 2 ? bf16_high(words) : bf16_low(words);
}
// Slot i = 4j + d of the decoded vectors (j = 4h + q) holds chunk element 2 (4q + d) + h.
constexpr int fp4_order(int i) {
  const int j = i / 4, d = i % 4;
  return 2 * (4 * (j % 4) + d) + j / 4;
}
// dst[i] = src[fp4_order(i)] for one chunk: the even elements, then the odd ones (ld2
// de-interleaves them).
FRUGAL_SIMD_INLINE void fp4_prepare(const float* src, float* dst) {
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const float32x4x2_t eo = vld2q_f32(src + 8 * k);
    vst1q_f32(dst + 4 * k, eo.val[0]);
    vst1q_f32(dst + 16 + 4 * k, eo.val[1]);
  }
}
// One scale per chunk: kFp4ScaleChunks chunks' e8m0 codes per load (n valid, any n, no
// over-read) -> lane i = 2^(code i - 127) (code 0 -> 2^-127, like the scalar e8m0);
// fp4_chunk_scale broadcasts chunk i's lane.
inline constexpr int kFp4ScaleChunks = 4;
FRUGAL_SIMD_INLINE VF fp4_scales_load(const uint8_t* s, int64_t n) {
  uint8x8_t c = vdup_n_u8(0);
  if (n >= 4) {
    uint32_t four;
    std::memcpy(&four, s, 4);
    c = vreinterpret_u8_u32(vdup_n_u32(four));
  } else {
    if (n >= 1) c = vld1_lane_u8(s, c, 0);
    if (n >= 2) c = vld1_lane_u8(s + 1, c, 1);
    if (n >= 3) c = vld1_lane_u8(s + 2, c, 2);
  }
  const uint32x4_t e = vshlq_n_u32(vmovl_u16(vget_low_u16(vmovl_u8(c))), 23);
  return vreinterpretq_f32_u32(vmaxq_u32(e, vdupq_n_u32(0x00400000)));
}
FRUGAL_SIMD_INLINE VF fp4_chunk_scale(VF s, int i) { return vdupq_n_f32(s[i & 3]); }
// kLanes (4) packed bytes -> 8 elements in memory order, unscaled; reads exactly 4 bytes.
FRUGAL_SIMD_INLINE void fp4_decode_seq(const uint8_t* p, VF v[2]) {
  uint32_t four;
  std::memcpy(&four, p, 4);
  const uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(four));
  // Element order: low nibble of byte k = element 2k, high nibble = element 2k + 1.
  const uint8x8_t codes = vzip1_u8(vand_u8(b, vdup_n_u8(0x0f)), vshr_n_u8(b, 4));
  const uint8x8_t bh = vqtbl1_u8(fp4_hi_tab(), codes);
  const uint8x8_t bl = vqtbl1_u8(fp4_lo_tab(), codes);
  v[0] = vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vzip1_u8(bl, bh)), 16));
  v[1] = vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vzip2_u8(bl, bh)), 16));
}

// ---- For the ops (ops.cpp, attention.cpp, probes.cpp) ----

// Attention score tile: kAttnTileEntries entries x 4 heads of accumulators (16, plus the
// entries' kv vectors and a q vector: 21 of 32 registers), and 8 heads x kAttnDimVecs
// accumulators in the p * kv step (16 + 2): AVX-512's values, the register file being as large.
inline constexpr int kAttnTileEntries = 4;
inline constexpr int kAttnDimVecs = 2;

// Lanes 2i and 2i + 1 exchanged (rope's pair swap).
FRUGAL_SIMD_INLINE VF swap_pairs(VF v) { return vrev64q_f32(v); }
// Lanes [0, n) of v, the rest 0 (any n).
FRUGAL_SIMD_INLINE VF keep_n(VF v, int64_t n) {
  static constexpr int32_t kIota[4] = {0, 1, 2, 3};
  const int32_t c = n <= 0 ? 0 : (n >= 4 ? 4 : static_cast<int32_t>(n));
  const uint32x4_t m = vcltq_s32(vld1q_s32(kIota), vdupq_n_s32(c));
  return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), m));
}
// Per lane a < b ? t : f (false for NaN).
FRUGAL_SIMD_INLINE VF select_lt(VF a, VF b, VF t, VF f) { return vbslq_f32(vcltq_f32(a, b), t, f); }
// Bitwise OR of the lanes' bit patterns.
FRUGAL_SIMD_INLINE VF bit_or(VF a, VF b) {
  return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(a), vreinterpretq_u32_f32(b)));
}
// Lane j = sum of the lanes of v[j], for 4 vectors: two rounds of pairwise adds (faddp).
FRUGAL_SIMD_INLINE VF hsum_each(const VF v[4]) {
  return vpaddq_f32(vpaddq_f32(v[0], v[1]), vpaddq_f32(v[2], v[3]));
}

}  // namespace frugal::kernels::simd::FRUGAL_SIMD_NS
