// Selects the vocabulary of the target this translation unit is compiled for. Every file in
// simd/ is compiled once per target (src/kernels/CMakeLists.txt: an OBJECT library per target
// with that target's flags and -DFRUGAL_SIMD_TARGET=FRUGAL_SIMD_<NAME>) and includes this header
// first; its code lives in namespace frugal::kernels::simd::FRUGAL_SIMD_NS, so the copies for
// different targets are different functions and never meet at link time.
//
// The vocabulary (target/*.h) is the only place that names intrinsics: vector type VF with kLanes
// f32 lanes, loads / stores (incl. the first-n forms for tails), arithmetic, reductions, exp, the
// bf16 / FP8 / MXFP4 decoders, prefetches, and the target's register-blocking constants. The
// kernels are written once against it.
#pragma once

#define FRUGAL_SIMD_AVX2 1
#define FRUGAL_SIMD_AVX512 2
#define FRUGAL_SIMD_NEON 3

// Everything a vocabulary header defines is static (internal linkage) and always inlined, so the
// generic code compiles to straight-line intrinsics and no out-of-line copy built with one
// target's instructions can be chosen by the linker for another.
#define FRUGAL_SIMD_INLINE static inline __attribute__((always_inline))

#if !defined(FRUGAL_SIMD_TARGET)
#error "simd/ files are compiled per target: FRUGAL_SIMD_TARGET must be set (see CMakeLists.txt)"
#elif FRUGAL_SIMD_TARGET == FRUGAL_SIMD_AVX2
#define FRUGAL_SIMD_NS avx2
#include "kernels/simd/target/avx2.h"
#elif FRUGAL_SIMD_TARGET == FRUGAL_SIMD_AVX512
#define FRUGAL_SIMD_NS avx512
#include "kernels/simd/target/avx512.h"
#elif FRUGAL_SIMD_TARGET == FRUGAL_SIMD_NEON
#define FRUGAL_SIMD_NS neon
#include "kernels/simd/target/neon.h"
#else
#error "unknown FRUGAL_SIMD_TARGET"
#endif
