// Scalar FP32 kernels shared by every architecture version.
//
// Every reduction here has a fixed summation order that depends only on the vector length, so a
// value computed for one token, for a batch of tokens, or on any thread is bit-identical. The
// compiler may not reassociate floating-point sums (no -ffast-math), which is what makes the
// written order the executed order.
#pragma once

#include <cmath>
#include <cstdint>

namespace rwkvlite::kernels {

// sum_i a[i] * b[i] in a fixed order: 16 running partial sums over whole blocks of 16,
// combined pairwise, then the remaining elements one by one.
float dot(const float* a, const float* b, int64_t n);

// y[r] = dot(w + r * n, x, n) for r in [row_begin, row_end): a matrix-vector product over a
// range of rows of a row-major matrix, four rows at a time sharing each load of x.
// Bit-identical to calling dot() per row.
void matvec_rows(const float* w, int64_t row_begin, int64_t row_end, int64_t n, const float* x, float* y);

// out[t] = dot(w, x + t * stride, n) for t in [0, count): one weight row against several
// inputs, loading the row once per pair of inputs. Bit-identical to calling dot() per input.
void dot_many(const float* w, const float* x, int64_t stride, int64_t count, int64_t n, float* out, int64_t out_stride);

// The epsilon of ln0, ln1, ln2 and ln_out, as in rwkv.cpp and PyTorch's default.
constexpr float kLayerNormEps = 1e-5f;

// Layer norm of each of `rows` rows of width d: (x - mean) / sqrt(var + eps) * weight + bias.
// Mean and variance are accumulated in double so that wide rows lose nothing to cancellation.
// `out` may equal `x`.

void layer_norm_rows(const float* x, int64_t rows, int64_t d, const float* weight, const float* bias, float eps,
                     float* out);

// Group norm of one row of `groups` x `group_size` values, in place: each group normalised by
// its own mean and variance, then scaled and shifted per channel.
void group_norm(float* x, int64_t groups, int64_t group_size, const float* weight, const float* bias, float eps);

// Token shift for a block of n consecutive tokens: prev_rows[t] is the previous token's row,
// that is carry (the last row of the previous block) for t = 0 and x[t - 1] otherwise.
// carry is then replaced by x[n - 1].
void token_shift(const float* x, int64_t n, int64_t d, float* carry, float* prev_rows);

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// x[i] = max(x[i], 0)^2, the channel-mix activation, without branches (the sign of a
// pre-activation is unpredictable, so a branch mispredicts about half the time).
void relu_square(float* x, int64_t n);

// y[i] += x[i]
void add_in_place(float* y, const float* x, int64_t n);

}  // namespace rwkvlite::kernels
