// The op API the model calls. One Kernels object is created at start-up by the engine (it picks
// the ISA once and borrows the thread pool) and is passed down by reference; the model never sees
// ISA names or intrinsics.
//
// Every op has a scalar reference implementation (src/kernels/ref/, the oracle) and, where it pays,
// a SIMD version written once (src/kernels/simd/) and compiled per target (AVX2, AVX-512, NEON)
// that the tests check against the oracle on every ISA the machine supports. Conventions: activations are f32, shapes outermost first, PyTorch's
// y = x W^T for linear layers. No op allocates.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/isa.h"
#include "kernels/op_args.h"
#include "quant/weight_view.h"

namespace frugal::kernels {

struct OpTable;

// What a matmul may assume about x (Kernels::matmul overloads with a MatmulInput).
//   kF32        any f32 values (the default numerics).
//   kBf16Exact  the caller promises every x value is exactly representable in bf16 (e.g. the
//               FP8-rounded activations of --act-quant: e4m3 codes times a power of two). For FP8
//               and MXFP4 weights, from Kernels::bf16_dot_min_tokens(format) tokens on, on CPUs with
//               AVX512-BF16, the matmul then runs on bf16 dot products (vdpbf16ps): the products
//               are exact in f32 as in the f32 kernels and only the f32 summation order differs.
//               It falls back to the f32 kernels (same results as kF32) for other formats, fewer
//               tokens, CPUs without AVX512-BF16, FRUGAL_BF16_DOT=0, a broken promise (release
//               builds; a check failure in debug builds), and inputs or scales so small that a
//               product or partial sum could be a subnormal (which vdpbf16ps flushes to zero).
enum class MatmulInput : uint8_t { kF32, kBf16Exact };

struct KernelOptions {
  // Unset: FRUGAL_ISA from the environment, else the best supported level.
  std::optional<Isa> isa = std::nullopt;
  ThreadPool* pool = nullptr;  // borrowed; null runs every op on the calling thread
  // The bf16 dot-product GEMM of MatmulInput::kBf16Exact where the CPU has it. Unset: on unless
  // the environment variable FRUGAL_BF16_DOT is "0" (for same-run comparisons).
  // FRUGAL_BF16_DOT_MIN_TOKENS=n moves its threshold (measurements only).
  std::optional<bool> bf16_dot = std::nullopt;
};

class Kernels {
 public:
  // Errors: FRUGAL_ISA (or options.isa) names an unknown level or one the CPU lacks.
  static Result<Kernels> create(const KernelOptions& options = {});
  ~Kernels();
  Kernels(Kernels&&) noexcept;
  Kernels& operator=(Kernels&&) noexcept;

  Isa isa() const { return isa_; }
  ThreadPool* pool() const { return pool_; }

  // ---- linear layers ----
  // y[m, w.rows] = x[m, w.cols] W^T for every weight format; weights are never expanded in memory
  // (FP8 / FP4 are decoded exactly, doc §2.B) and sums are f32. Rows are split across the pool.
  // m == 1 is the decode GEMV (memory-bound); small m (MoE token groups) share each decoded
  // weight vector among up to 8 tokens; from ~10-24 tokens (per format and target) each weight is
  // decoded once into a small stack buffer and reused by all tokens. x, y must not overlap.
  void matmul(const quant::WeightView& w, int64_t m, const float* x, float* y) const;
  // Same with row strides: x row t at x + t * ldx, y row t at y + t * ldy.
  void matmul(const quant::WeightView& w, int64_t m, const float* x, int64_t ldx, float* y,
              int64_t ldy) const;
  // The same with a promise about x (see MatmulInput). kBf16Exact converts x to bf16 once per
  // call into the caller's xb, which must hold m * bf16_x_stride(w.cols) values (the model's
  // scratch: no allocation here); kF32 does not use it.
  void matmul(const quant::WeightView& w, int64_t m, const float* x, float* y, MatmulInput input,
              std::span<uint16_t> xb) const;
  void matmul(const quant::WeightView& w, int64_t m, const float* x, int64_t ldx, float* y,
              int64_t ldy, MatmulInput input, std::span<uint16_t> xb) const;
  // Row stride of kBf16Exact's bf16 copy of x for `cols` columns (cols rounded up to 32).
  static int64_t bf16_x_stride(int64_t cols);
  // Whether MatmulInput::kBf16Exact can use bf16 dot products here (CPU, ISA level, option), and
  // from how many tokens on for weights of format f (0 when it cannot).
  bool bf16_dot() const;
  int64_t bf16_dot_min_tokens(quant::WeightFormat f) const;

  // ---- normalisation and position ----
  // out[t] = weight * (x[t] * rsqrt(mean(x[t]^2) + eps)) for t < m; x, out: [m, n]; may alias.
  void rms_norm(const float* x, const float* weight, int64_t m, int64_t n, float eps,
                float* out) const;
  // The same without a weight (the per-head q norm of §2.3).
  void rms_norm(const float* x, int64_t m, int64_t n, float eps, float* out) const;
  // Interleaved RoPE on the last rope_dim dims of each of n_vec vectors x[n_vec, dim], in place:
  // pair (2i, 2i+1) of the slice times e^{+-i angle_i}, with cos/sin[rope_dim / 2] of one position.
  void rope(float* x, int64_t n_vec, int64_t dim, int64_t rope_dim, const float* cos,
            const float* sin, RopeDirection dir) const;

  // ---- softmax, attention, selection ----
  // Row-wise softmax of x[m, n] in place.
  void softmax(float* x, int64_t m, int64_t n) const;
  // See AttentionArgs (scores in f32, online softmax over the entries, the sink only in the
  // denominator). (query, head) pairs are split across the pool.
  void attention(const AttentionArgs& args) const;
  // The k largest of x[n] (k <= n), largest first, ties to the lower index: idx[k], val[k]
  // (val may be null). x must be NaN-free.
  void top_k(const float* x, int64_t n, int64_t k, int32_t* idx, float* val) const;

  // ---- MoE expert activation (§2.7) ----
  // out = scale * silu(g) * u with, when limit > 0, g = min(g, limit), u = clamp(u, -limit, limit).
  // gate, up, out: [n]; out may alias either input.
  void swiglu(const float* gate, const float* up, int64_t n, float limit, float scale,
              float* out) const;

  // ---- activation rounding (§2.A) ----
  // out[n] = act_quant(x, block) dequantized, bit for bit as quant::fp8_simulate: per block of
  // `block` elements (block divides n) s = 2^ceil(log2(max(amax, 1e-4) / 448)) and
  // x -> e4m3(clamp(x / s, +-448)) * s, ties to even. out may be x. Blocks are split across the
  // pool.
  void fp8_round(const float* x, int64_t n, int64_t block, float* out) const;

  // ---- hyper-connections (§2.6; see HcPreArgs / HcHeadArgs / HcPostArgs) ----
  void hc_pre(const HcPreArgs& args) const;
  void hc_head(const HcHeadArgs& args) const;
  void hc_post(const HcPostArgs& args) const;

  // ---- machine probes: the limits frugal bench and bench/ rate the kernels against ----
  // `iters` rounds of 12 independent FMA chains held in registers, on the calling thread, with
  // this level's widest f32 FMA; returns the flops done (2 per lane and FMA).
  uint64_t fma_peak(int64_t iters) const;
  // Reads p[n_words] (p 64-byte aligned, n_words a multiple of 32) with this level's widest loads,
  // as four streams a quarter of the range apart (like a GEMV reading several rows); returns an OR
  // of the words so nothing is optimised away.
  uint64_t read_stream(const uint64_t* p, int64_t n_words) const;
  // `iters` rounds of 24 independent vdpbf16ps chains (32 bf16 products each) on the calling
  // thread; returns the flops done (2 per product), or 0 without the bf16 dot product.
  uint64_t bf16_dot_peak(int64_t iters) const;

 private:
  Kernels();

  Isa isa_ = Isa::kScalar;
  ThreadPool* pool_ = nullptr;
  std::unique_ptr<OpTable> table_;  // owned; filled once in create()
};

}  // namespace frugal::kernels
