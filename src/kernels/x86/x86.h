// Entry points of the per-ISA kernel files (each defined in a file built with that ISA's flags).
// Plain declarations only; see op_table.h for the signatures' meaning.
#pragma once

#include <cstdint>

#include "kernels/op_table.h"

namespace frugal::kernels {

namespace avx2 {
void matmul_fp8(const MatmulTask& task, int64_t r0, int64_t r1);
void matmul_mxfp4(const MatmulTask& task, int64_t r0, int64_t r1);
void matmul_bf16(const MatmulTask& task, int64_t r0, int64_t r1);
void matmul_f32(const MatmulTask& task, int64_t r0, int64_t r1);
void attention(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1);
// Any format, for m >= kGemmMinTokens (avx2_common.h).
void gemm_many_tokens(const MatmulTask& task, int64_t r0, int64_t r1);
}  // namespace avx2

namespace avx512 {
void matmul_fp8(const MatmulTask& task, int64_t r0, int64_t r1);
void matmul_mxfp4(const MatmulTask& task, int64_t r0, int64_t r1);
void matmul_bf16(const MatmulTask& task, int64_t r0, int64_t r1);
void matmul_f32(const MatmulTask& task, int64_t r0, int64_t r1);
void attention(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1);
// Any format, for m >= kGemmMinTokens (avx512_common.h): decode once, register-blocked tokens.
void gemm_many_tokens(const MatmulTask& task, int64_t r0, int64_t r1);
}  // namespace avx512

}  // namespace frugal::kernels
