#include "compress/pipeline/dense_products.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace rwkvlite {
namespace {

// ---- Register tiles ------------------------------------------------------------------------
//
// A tile is M rows (broadcast operand, M <= MR) times NR lanes (vector operand) of outputs, held
// in registers for a whole reduction: acc[i][lane] = fma(a_i[k], b[k][lane], acc[i][lane]) for
// k = 0, 1, ... in order. `a` is read as a[i * a_stride + k * a_step], `b` as b[k * b_step + lane].
// AVX-512: 12 x 32 (24 accumulators of 16 floats); AVX2: 6 x 16 (12 of 8); scalar: 4 x 8.

constexpr int kMr512 = 12, kNr512 = 32;
constexpr int kMr256 = 6, kNr256 = 16;
constexpr int kMrScalar = 4, kNrScalar = 8;

template <int M>
__attribute__((target("avx512f,fma"))) void tile_avx512(const float* a, int64_t a_stride, int64_t a_step,
                                                          const float* b, int64_t b_step, int64_t len, float* out) {
  __m512 acc[M][2];
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < len; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * b_step), b1 = _mm512_loadu_ps(b + k * b_step + 16);
#pragma GCC unroll 12
    for (int i = 0; i < M; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * a_stride + k * a_step]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < M; ++i) {
    _mm512_storeu_ps(out + i * kNr512, acc[i][0]);
    _mm512_storeu_ps(out + i * kNr512 + 16, acc[i][1]);
  }
}

template <int M>
__attribute__((target("avx2,fma"))) void tile_avx2(const float* a, int64_t a_stride, int64_t a_step, const float* b,
                                                     int64_t b_step, int64_t len, float* out) {
  __m256 acc[M][2];
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < len; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * b_step), b1 = _mm256_loadu_ps(b + k * b_step + 8);
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) {
      const __m256 ai = _mm256_set1_ps(a[i * a_stride + k * a_step]);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < M; ++i) {
    _mm256_storeu_ps(out + i * kNr256, acc[i][0]);
    _mm256_storeu_ps(out + i * kNr256 + 8, acc[i][1]);
  }
}

template <int M>
void tile_scalar(const float* a, int64_t a_stride, int64_t a_step, const float* b, int64_t b_step, int64_t len,
                 float* out) {
  float acc[M][kNrScalar] = {};
  for (int64_t k = 0; k < len; ++k) {
    for (int i = 0; i < M; ++i) {
      const float ai = a[i * a_stride + k * a_step];
      for (int j = 0; j < kNrScalar; ++j) acc[i][j] = std::fma(ai, b[k * b_step + j], acc[i][j]);
    }
  }
  for (int i = 0; i < M; ++i) std::copy_n(acc[i], kNrScalar, out + i * kNrScalar);
}

// One ISA path: its tile geometry and the tile function for any M in [1, mr].
struct Path {
  int mr, nr;
  void (*tile[kMr512 + 1])(const float*, int64_t, int64_t, const float*, int64_t, int64_t, float*);
};

template <int... Ms>
constexpr Path make_avx512(std::integer_sequence<int, Ms...>) {
  return Path{kMr512, kNr512, {nullptr, &tile_avx512<Ms + 1>...}};
}
template <int... Ms>
constexpr Path make_avx2(std::integer_sequence<int, Ms...>) {
  return Path{kMr256, kNr256, {nullptr, &tile_avx2<Ms + 1>...}};
}
template <int... Ms>
constexpr Path make_scalar(std::integer_sequence<int, Ms...>) {
  return Path{kMrScalar, kNrScalar, {nullptr, &tile_scalar<Ms + 1>...}};
}

const Path kAvx512 = make_avx512(std::make_integer_sequence<int, kMr512>{});
const Path kAvx2 = make_avx2(std::make_integer_sequence<int, kMr256>{});
const Path kScalar = make_scalar(std::make_integer_sequence<int, kMrScalar>{});

bool has_avx512() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"); }
bool has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

ProductIsa resolve(ProductIsa isa) {
  if (isa == ProductIsa::Auto) return detected_product_isa();
  if (isa == ProductIsa::Avx512 && !has_avx512()) return ProductIsa::Scalar;
  if (isa == ProductIsa::Avx2 && !has_avx2()) return ProductIsa::Scalar;
  return isa;
}

const Path& path_for(ProductIsa isa) {
  switch (resolve(isa)) {
    case ProductIsa::Avx512: return kAvx512;
    case ProductIsa::Avx2: return kAvx2;
    default: return kScalar;
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Scratch that grows to the largest request and is then reused: calibration calls these
// kernels thousands of times with the same sizes, and a fresh allocation of hundreds of KiB per
// call would be page faults every time. One per thread.
// `Use` tells the kernels' buffers apart, so that one never resizes the other's.
enum class Use { WeightPanel, MomentChunk };
template <Use>
std::vector<float>& scratch(size_t n) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer;
}

}  // namespace

ProductIsa detected_product_isa() {
  static const ProductIsa isa = has_avx512() ? ProductIsa::Avx512 : has_avx2() ? ProductIsa::Avx2 : ProductIsa::Scalar;
  return isa;
}

const char* product_isa_name(ProductIsa isa) {
  switch (isa) {
    case ProductIsa::Auto: return "auto";
    case ProductIsa::Avx512: return "avx512";
    case ProductIsa::Avx2: return "avx2";
    case ProductIsa::Scalar: return "scalar";
  }
  return "?";
}

void multiply_rows_by_transpose(const float* X, int64_t n, const float* W, int64_t rows, int64_t cols, float* Y,
                                int64_t ldy, ThreadPool& pool, ProductIsa isa) {
  if (n <= 0 || rows <= 0) return;
  const Path& p = path_for(isa);
  const int64_t nr = p.nr, mr = p.mr;
  // Work item: a panel of nr consecutive rows of W, packed transposed by the thread that takes it
  // (for each k, the k-th weight of the nr rows contiguously; zero rows past the end: the
  // vector operand of the tiles), then run against every input, mr inputs per tile (the
  // broadcast operand, read in place). A panel (cols x nr floats, 96 KiB at cols = 768) stays
  // in L2 while the inputs stream past it, and each output row of a tile is stored contiguously.
  const int64_t panels = ceil_div(rows, nr);
  pool.parallel_for(0, panels, nr * cols * n, [&](int64_t lo, int64_t hi) {
    std::vector<float>& packed = scratch<Use::WeightPanel>(static_cast<size_t>(cols * nr));
    float out[kMr512 * kNr512];
    for (int64_t q = lo; q < hi; ++q) {
      const int64_t r0 = q * nr, valid = std::min(nr, rows - r0);
      float* panel = packed.data();
      for (int64_t j = 0; j < nr; ++j) {
        if (j < valid) {
          const float* w = W + (r0 + j) * cols;
          for (int64_t k = 0; k < cols; ++k) panel[k * nr + j] = w[k];
        } else {
          for (int64_t k = 0; k < cols; ++k) panel[k * nr + j] = 0.0f;
        }
      }
      for (int64_t t0 = 0; t0 < n; t0 += mr) {
        const int m = static_cast<int>(std::min(mr, n - t0));
        p.tile[m](X + t0 * cols, cols, 1, panel, nr, cols, out);
        for (int i = 0; i < m; ++i) std::copy_n(out + i * nr, valid, Y + (t0 + i) * ldy + r0);
      }
    }
  });
}

void accumulate_second_moment(const float* X, int64_t n, int64_t d, double* S, ThreadPool& pool, ProductIsa isa) {
  if (n <= 0 || d <= 0) return;
  const Path& p = path_for(isa);
  const int64_t nr = p.nr, mr = p.mr;
  // Inputs are taken kChunk at a time, copied into rows padded with zeros to a multiple of nr
  // so that every tile reads whole vectors; a chunk (1.5 MiB at d = 768) stays in L2 while every
  // tile reads it, and S (too big for any cache) is read and written once per chunk.
  constexpr int64_t kChunk = 2 * kSecondMomentRun;
  const int64_t d_pad = ceil_div(d, nr) * nr;
  const int64_t row_tiles = ceil_div(d, mr);
  std::vector<float>& padded = scratch<Use::MomentChunk>(static_cast<size_t>(kChunk * d_pad));
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t clen = std::min(kChunk, n - c0);
    for (int64_t t = 0; t < clen; ++t) {
      std::copy_n(X + (c0 + t) * d, d, padded.data() + t * d_pad);
      std::fill(padded.data() + t * d_pad + d, padded.data() + (t + 1) * d_pad, 0.0f);
    }
    pool.parallel_for(0, row_tiles, mr * d * clen / 2, [&](int64_t lo, int64_t hi) {
      float out[kMr512 * kNr512];
      double sum[kMr512 * kNr512];
      for (int64_t rt = lo; rt < hi; ++rt) {
        const int64_t i0 = rt * mr;
        const int m = static_cast<int>(std::min(mr, d - i0));
        // Column tiles up to the one holding the tile's last row index: the whole lower triangle.
        for (int64_t j0 = 0; j0 <= i0 + m - 1; j0 += nr) {
          std::fill_n(sum, m * nr, 0.0);
          for (int64_t r0 = 0; r0 < clen; r0 += kSecondMomentRun) {
            const float* run = padded.data() + r0 * d_pad;
            p.tile[m](run + i0, 1, d_pad, run + j0, d_pad, std::min(kSecondMomentRun, clen - r0), out);
            for (int64_t e = 0; e < m * nr; ++e) sum[e] += static_cast<double>(out[e]);
          }
          const int64_t jn = std::min(nr, d - j0);
          for (int i = 0; i < m; ++i) {
            double* s = S + (i0 + i) * d + j0;
            for (int64_t j = 0; j < jn; ++j) s[j] += sum[i * nr + j];
          }
        }
      }
    });
  }
}

}  // namespace rwkvlite
