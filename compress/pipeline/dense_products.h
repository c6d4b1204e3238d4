// Fast, deterministic FP32 matrix products for the compressor's heavy loops: calibration's
// projections and input second moments, and the cluster head's dense targets.
//
// The project builds for baseline x86-64, where Eigen and the runtime's kernels have no AVX.
// These kernels carry AVX-512 and AVX2+FMA paths (GCC target attributes, one function each, no
// templates from other headers compiled with wider ISAs) picked once at run time from
// __builtin_cpu_supports, and a scalar std::fma path for anything else.
//
// Determinism is by construction, not by luck: every output element is ONE fused
// multiply-add chain over the reduction index in increasing order, started from zero, and each
// vector lane computes exactly one element. So the result of an element does not depend on
// the batch size, the blocking, the thread count or the ISA path (FMA rounds once in every
// path), and is bit-identical across runs, --threads 1 vs 2 and machines.
#pragma once

#include <cstdint>

#include "runtime/engine/thread_pool.h"

namespace rwkvlite {

enum class ProductIsa { Auto, Avx512, Avx2, Scalar };

// The path Auto resolves to on this machine.
ProductIsa detected_product_isa();
const char* product_isa_name(ProductIsa isa);  // "avx512", "avx2", "scalar" ("auto" for Auto)

// Y[t * ldy + r] = sum_k W[r * cols + k] * X[t * cols + k] for t < n, r < rows:
// n inputs (rows of X) through the row-major rows x cols matrix W. Work is split over `pool`
// by blocks of output rows. `isa` other than Auto is for tests (falls back to Scalar when the
// machine lacks it).
void multiply_rows_by_transpose(const float* X, int64_t n, const float* W, int64_t rows, int64_t cols, float* Y,
                                int64_t ldy, ThreadPool& pool, ProductIsa isa = ProductIsa::Auto);

// S[i * d + j] += sum_t X[t * d + i] * X[t * d + j] for every j <= i (the lower triangle in
// row-major terms, i.e. the upper one of a column-major Eigen matrix; entries above it may be
// written too). S is d x d, double. Products are accumulated in FP32 over runs of at most
// kSecondMomentRun consecutive inputs (one FMA chain per element, as above) and each run's sum
// is added to S in double, so the relative error of S stays at FP32 rounding of a short sum
// whatever n is. Deterministic for a given sequence of calls (same n per call).
inline constexpr int64_t kSecondMomentRun = 256;
void accumulate_second_moment(const float* X, int64_t n, int64_t d, double* S, ThreadPool& pool,
                              ProductIsa isa = ProductIsa::Auto);

}  // namespace rwkvlite
