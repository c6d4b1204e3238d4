#include "runtime/engine/kernels.h"

#include <cstring>

// f32x8 values are passed and returned differently with and without AVX (GCC's -Wpsabi note).
// The helpers below are compiled for the baseline target but called from AVX2 clones, so they
// must never be real calls: always_inline guarantees that at every optimisation level (an
// out-of-line call at -O0 once returned garbage this way). With that, the note is moot.
#pragma GCC diagnostic ignored "-Wpsabi"
#define RWKVLITE_INLINE inline __attribute__((always_inline))

namespace rwkvlite::kernels {
namespace {

// Eight floats as one value. GCC and Clang lower the element-wise operations to whatever vector
// registers the target has (two SSE registers on baseline x86-64, one AVX register), and each
// lane is an ordinary IEEE float operation, so the result is the same on every target.
typedef float f32x8 __attribute__((vector_size(32)));

RWKVLITE_INLINE f32x8 load8(const float* p) {
  f32x8 v;
  std::memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}

// The fixed order in which the 16 lane sums of dot() are combined.
RWKVLITE_INLINE float combine(f32x8 a, f32x8 b) {
  const f32x8 s = a + b;
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

}  // namespace

// The hot loops are compiled twice, for AVX2 and for baseline x86-64, and chosen at load time.
// Without FMA in either target the two produce identical results, so the choice changes speed,
// never numbers.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RWKVLITE_HOT __attribute__((target_clones("avx2", "default")))
#else
#define RWKVLITE_HOT
#endif

RWKVLITE_HOT float dot(const float* a, const float* b, int64_t n) {
  f32x8 acc0 = {}, acc1 = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 += load8(a + i) * load8(b + i);
    acc1 += load8(a + i + 8) * load8(b + i + 8);
  }
  float s = combine(acc0, acc1);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

RWKVLITE_HOT void matvec_rows(const float* w, int64_t row_begin, int64_t row_end, int64_t n, const float* x,
                              float* y) {
  int64_t r = row_begin;
  for (; r + 4 <= row_end; r += 4) {
    const float* w0 = w + r * n;
    const float* w1 = w0 + n;
    const float* w2 = w1 + n;
    const float* w3 = w2 + n;
    f32x8 a0 = {}, a1 = {}, b0 = {}, b1 = {}, c0 = {}, c1 = {}, d0 = {}, d1 = {};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const f32x8 x0 = load8(x + i), x1 = load8(x + i + 8);
      a0 += load8(w0 + i) * x0;
      a1 += load8(w0 + i + 8) * x1;
      b0 += load8(w1 + i) * x0;
      b1 += load8(w1 + i + 8) * x1;
      c0 += load8(w2 + i) * x0;
      c1 += load8(w2 + i + 8) * x1;
      d0 += load8(w3 + i) * x0;
      d1 += load8(w3 + i + 8) * x1;
    }
    float sa = combine(a0, a1), sb = combine(b0, b1), sc = combine(c0, c1), sd = combine(d0, d1);
    for (; i < n; ++i) {
      sa += w0[i] * x[i];
      sb += w1[i] * x[i];
      sc += w2[i] * x[i];
      sd += w3[i] * x[i];
    }
    y[r] = sa;
    y[r + 1] = sb;
    y[r + 2] = sc;
    y[r + 3] = sd;
  }
  for (; r < row_end; ++r) y[r] = dot(w + r * n, x, n);
}

RWKVLITE_HOT void dot_many(const float* w, const float* x, int64_t stride, int64_t count, int64_t n, float* out,
                           int64_t out_stride) {
  int64_t t = 0;
  // Two inputs at a time share each load of the weight row; per input, the operations and their
  // order are exactly those of dot().
  for (; t + 2 <= count; t += 2) {
    const float* x0 = x + t * stride;
    const float* x1 = x0 + stride;
    f32x8 a0 = {}, a1 = {}, b0 = {}, b1 = {};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const f32x8 w0 = load8(w + i), w1 = load8(w + i + 8);
      a0 += w0 * load8(x0 + i);
      a1 += w1 * load8(x0 + i + 8);
      b0 += w0 * load8(x1 + i);
      b1 += w1 * load8(x1 + i + 8);
    }
    float sa = combine(a0, a1), sb = combine(b0, b1);
    for (int64_t j = i; j < n; ++j) {
      sa += w[j] * x0[j];
      sb += w[j] * x1[j];
    }
    out[t * out_stride] = sa;
    out[(t + 1) * out_stride] = sb;
  }
  for (; t < count; ++t) out[t * out_stride] = dot(w, x + t * stride, n);
}

void layer_norm_rows(const float* x, int64_t rows, int64_t d, const float* weight, const float* bias, float eps,
                     float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* yr = out + r * d;
    double sum = 0;
    for (int64_t i = 0; i < d; ++i) sum += xr[i];
    const double mean = sum / static_cast<double>(d);
    double sq = 0;
    for (int64_t i = 0; i < d; ++i) {
      const double c = xr[i] - mean;
      sq += c * c;
    }
    const double inv_std = 1.0 / std::sqrt(sq / static_cast<double>(d) + static_cast<double>(eps));
    for (int64_t i = 0; i < d; ++i) {
      yr[i] = static_cast<float>((xr[i] - mean) * inv_std) * weight[i] + bias[i];
    }
  }
}

void group_norm(float* x, int64_t groups, int64_t group_size, const float* weight, const float* bias, float eps) {
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t o = g * group_size;
    layer_norm_rows(x + o, 1, group_size, weight + o, bias + o, eps, x + o);
  }
}

void token_shift(const float* x, int64_t n, int64_t d, float* carry, float* prev_rows) {
  if (n <= 0) return;
  std::memcpy(prev_rows, carry, sizeof(float) * static_cast<size_t>(d));
  if (n > 1) std::memcpy(prev_rows + d, x, sizeof(float) * static_cast<size_t>((n - 1) * d));
  std::memcpy(carry, x + (n - 1) * d, sizeof(float) * static_cast<size_t>(d));
}

RWKVLITE_HOT void relu_square(float* x, int64_t n) {
  typedef int32_t i32x8 __attribute__((vector_size(32)));
  const f32x8 zero = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    f32x8 v = load8(x + i);
    const i32x8 positive = v > zero;  // all ones where v > 0
    v = reinterpret_cast<f32x8>(reinterpret_cast<i32x8>(v) & positive);
    v = v * v;
    std::memcpy(x + i, &v, sizeof v);
  }
  for (; i < n; ++i) {
    const float h = x[i] > 0.0f ? x[i] : 0.0f;
    x[i] = h * h;
  }
}

void add_in_place(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace rwkvlite::kernels
