// Matrix-vector products over stored rows: y[r] = dot_row(row r, x) for a block of rows, the
// kernel behind every compressed projection. Single-token inference is bound by memory
// bandwidth, so what matters is streaming each stored byte once at full speed: the rows are
// converted in registers (F16C for f16, sign extension for i8, nibble unpacking for i4; i3 and
// i2 codes are unpacked by scalar bit extraction into a small buffer first), four
// rows at a time so that four independent accumulator chains hide the add latency.
//
// Every result is bit-identical to dot_row: one 8-lane accumulator per row gets element i in
// lane i mod 8, exactly as dot_row's DotAccumulator does, the tail and the lane combination
// follow the same order, and no FMA is used (a fused multiply-add rounds once instead of twice).
// So the AVX2 path changes speed, never numbers, and tests compare it with the portable one.
#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/format/codec.h"
#include "runtime/format/codec_internal.h"

// RWKVLITE_PORTABLE_KERNELS builds the portable kernels only (to check that they compile).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(RWKVLITE_PORTABLE_KERNELS)
#include <cpuid.h>
#include <immintrin.h>
#define RWKVLITE_HAVE_X86_KERNELS 1
#endif

namespace rwkvlite::format {

using namespace detail;

namespace {

// Encodings the vector kernels cover; the integer tables (i32, u8) never hold weights.
[[maybe_unused]] bool vector_kernel_covers(Encoding encoding, int64_t cols, const EncodingParams& params) {
  switch (encoding) {
    case Encoding::F32:
    case Encoding::F16:
    case Encoding::BF16:
    case Encoding::I8:
    case Encoding::B1: return true;
    case Encoding::I4:
    case Encoding::I3:
    case Encoding::I2: return cols % params.group_size == 0;  // a partial last group has a tail
    default: return false;
  }
}

// Where the rows of a matrix-vector product are: evenly spaced (a stored matrix) or anywhere
// (rows of a row cache).
struct StridedRows {
  const uint8_t* base;
  size_t stride;
  const uint8_t* operator[](int64_t r) const { return base + static_cast<size_t>(r) * stride; }
};
struct GatheredRows {
  const uint8_t* const* ptrs;
  const uint8_t* operator[](int64_t r) const { return ptrs[r]; }
};

#ifdef RWKVLITE_HAVE_X86_KERNELS

#define RWKVLITE_AVX2 __attribute__((target("avx2,f16c")))
#define RWKVLITE_AVX2_INLINE __attribute__((target("avx2,f16c"), always_inline)) inline

// dot_row's lane combination: ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7)) + tail.
RWKVLITE_AVX2_INLINE float combine_lanes(__m256 v, float tail) {
  alignas(32) float l[8];
  _mm256_store_ps(l, v);
  return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7])) + tail;
}

// Eight stored values starting at column c, as floats, unscaled.
template <Encoding E>
RWKVLITE_AVX2_INLINE __m256 load8(const uint8_t* row, int64_t c) {
  if constexpr (E == Encoding::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row + 4 * c));
  } else if constexpr (E == Encoding::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c)));
  } else if constexpr (E == Encoding::BF16) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  } else if constexpr (E == Encoding::I8) {  // codes after the f32 scale
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + kI8HeaderBytes + c));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
  } else {  // B1: bit k of byte c / 8 set means column c + k is -1 (c is a multiple of 8)
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i byte = _mm256_set1_epi32(row[kB1HeaderBytes + c / 8]);
    const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(byte, bit), bit);
    const __m256i sign = _mm256_and_si256(set, _mm256_set1_epi32(static_cast<int>(0x80000000u)));
    return _mm256_or_ps(_mm256_castsi256_ps(sign), _mm256_set1_ps(1.0f));
  }
}

// One stored value as a float, for the tail of a row whose width is not a multiple of 8.
template <Encoding E>
inline float load1(const uint8_t* row, int64_t c) {
  if constexpr (E == Encoding::F32) return load_f32(row + 4 * c);
  else if constexpr (E == Encoding::F16) return fp16_to_float_fast(load_u16(row + 2 * c));
  else if constexpr (E == Encoding::BF16) return bf16_to_float_fast(load_u16(row + 2 * c));
  else if constexpr (E == Encoding::I8) return static_cast<float>(static_cast<int8_t>(row[kI8HeaderBytes + c]));
  else return (row[kB1HeaderBytes + c / 8] >> (c % 8)) & 1 ? -1.0f : 1.0f;
}

template <Encoding E>
inline float scale_of(const uint8_t* row) {
  if constexpr (E == Encoding::I8 || E == Encoding::B1) return load_f32(row);
  else return 1.0f;
}

// w * x for eight stored values of a row at column c. For b1 the stored value is +-1, and
// flipping x's sign bit is exactly the product, in fewer instructions.
template <Encoding E>
RWKVLITE_AVX2_INLINE __m256 product8(const uint8_t* row, int64_t c, __m256 xv) {
  if constexpr (E == Encoding::B1) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i byte = _mm256_set1_epi32(row[kB1HeaderBytes + c / 8]);
    const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(byte, bit), bit);
    return _mm256_xor_ps(xv, _mm256_castsi256_ps(_mm256_slli_epi32(set, 31)));
  } else {
    return _mm256_mul_ps(load8<E>(row, c), xv);
  }
}

// Rows with one scale (or none): f32, f16, bf16, i8, b1.
template <Encoding E, typename Rows>
RWKVLITE_AVX2 void dot_rows_scaled(Rows rows, int64_t n_rows, const float* x, int64_t cols, float* y) {
  const int64_t body = cols / 8 * 8;
  int64_t r = 0;
  for (; r + 4 <= n_rows; r += 4) {
    const uint8_t* w0 = rows[r];
    const uint8_t* w1 = rows[r + 1];
    const uint8_t* w2 = rows[r + 2];
    const uint8_t* w3 = rows[r + 3];
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t c = 0; c < body; c += 8) {
      const __m256 xv = _mm256_loadu_ps(x + c);
      a0 = _mm256_add_ps(a0, product8<E>(w0, c, xv));
      a1 = _mm256_add_ps(a1, product8<E>(w1, c, xv));
      a2 = _mm256_add_ps(a2, product8<E>(w2, c, xv));
      a3 = _mm256_add_ps(a3, product8<E>(w3, c, xv));
    }
    float t0 = 0.0f, t1 = 0.0f, t2 = 0.0f, t3 = 0.0f;
    for (int64_t c = body; c < cols; ++c) {
      t0 += load1<E>(w0, c) * x[c];
      t1 += load1<E>(w1, c) * x[c];
      t2 += load1<E>(w2, c) * x[c];
      t3 += load1<E>(w3, c) * x[c];
    }
    y[r] = scale_of<E>(w0) * combine_lanes(a0, t0);
    y[r + 1] = scale_of<E>(w1) * combine_lanes(a1, t1);
    y[r + 2] = scale_of<E>(w2) * combine_lanes(a2, t2);
    y[r + 3] = scale_of<E>(w3) * combine_lanes(a3, t3);
  }
  for (; r < n_rows; ++r) {
    const uint8_t* w = rows[r];
    __m256 a = _mm256_setzero_ps();
    for (int64_t c = 0; c < body; c += 8) a = _mm256_add_ps(a, product8<E>(w, c, _mm256_loadu_ps(x + c)));
    float t = 0.0f;
    for (int64_t c = body; c < cols; ++c) t += load1<E>(w, c) * x[c];
    y[r] = scale_of<E>(w) * combine_lanes(a, t);
  }
}

// The 2 x 16 codes of 16 packed i4 bytes (byte j holds column 2j in its low nibble and 2j + 1
// in its high one), in column order: lo = columns 0..15, hi = columns 16..31.
RWKVLITE_AVX2_INLINE void unpack_nibbles(const uint8_t* p, __m128i& lo, __m128i& hi) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i mask = _mm_set1_epi8(15);
  const __m128i low = _mm_and_si128(b, mask);
  const __m128i high = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
  lo = _mm_unpacklo_epi8(low, high);
  hi = _mm_unpackhi_epi8(low, high);
}

RWKVLITE_AVX2_INLINE __m256 codes8(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }

// K i4 rows of whole groups: each group adds scale * sum(q x) + min * sum(x), as dot_row does.
// sum(x) over each group is the same for every row, so it is computed once (group_x_sums).
template <int K, typename Rows>
RWKVLITE_AVX2 void dot_i4_rows(Rows rows, int64_t first, const float* x, int64_t cols, int64_t group,
                               const float* group_x_sums, float* y) {
  const int64_t group_bytes = kI4GroupHeaderBytes + group / 2;
  float total[K] = {};
  for (int64_t g = 0; g < cols / group; ++g) {
    const float* xg = x + g * group;
    for (int k = 0; k < K; ++k) {
      const uint8_t* p = rows[first + k] + g * group_bytes;
      const uint8_t* nib = p + kI4GroupHeaderBytes;
      __m256 a = _mm256_setzero_ps();
      for (int64_t c = 0; c < group; c += 32) {
        __m128i lo, hi;
        unpack_nibbles(nib + c / 2, lo, hi);
        a = _mm256_add_ps(a, _mm256_mul_ps(codes8(lo), _mm256_loadu_ps(xg + c)));
        a = _mm256_add_ps(a, _mm256_mul_ps(codes8(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(xg + c + 8)));
        a = _mm256_add_ps(a, _mm256_mul_ps(codes8(hi), _mm256_loadu_ps(xg + c + 16)));
        a = _mm256_add_ps(a, _mm256_mul_ps(codes8(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(xg + c + 24)));
      }
      const float scale = fp16_to_float_fast(load_u16(p)), min = fp16_to_float_fast(load_u16(p + 2));
      total[k] += scale * combine_lanes(a, 0.0f) + min * group_x_sums[g];
    }
  }
  for (int k = 0; k < K; ++k) y[k] = total[k];
}

template <typename Rows>
RWKVLITE_AVX2 void dot_rows_i4(Rows rows, int64_t n_rows, const float* x, int64_t cols, int64_t group,
                               const float* group_x_sums, float* y) {
  int64_t r = 0;
  // Two rows at a time give two independent chains; the per-group combination is scalar work,
  // so more rows add little.
  for (; r + 2 <= n_rows; r += 2) dot_i4_rows<2>(rows, r, x, cols, group, group_x_sums, y + r);
  if (r < n_rows) dot_i4_rows<1>(rows, r, x, cols, group, group_x_sums, y + r);
}

// K i3 or i2 rows of whole groups: each group's codes are unpacked into floats first (scalar
// bit extraction, as the portable kernel does) and then multiplied and added 8 lanes at a time
// in dot_row's order; the per-group combination is dot_i4_rows'.
template <int K, typename Rows>
RWKVLITE_AVX2 void dot_packed_rows(Rows rows, int64_t first, const float* x, int64_t cols, int64_t group, int bits,
                                   const float* group_x_sums, float* y) {
  const int64_t gbytes = group_bytes(group, bits);
  float total[K] = {};
  alignas(32) float codes[128];
  for (int64_t g = 0; g < cols / group; ++g) {
    const float* xg = x + g * group;
    for (int k = 0; k < K; ++k) {
      const uint8_t* p = rows[first + k] + g * gbytes;
      unpack_group_codes(p + kI4GroupHeaderBytes, group, bits, codes);
      __m256 a = _mm256_setzero_ps();
      for (int64_t c = 0; c < group; c += 8) {
        a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_load_ps(codes + c), _mm256_loadu_ps(xg + c)));
      }
      const float scale = fp16_to_float_fast(load_u16(p)), min = fp16_to_float_fast(load_u16(p + 2));
      total[k] += scale * combine_lanes(a, 0.0f) + min * group_x_sums[g];
    }
  }
  for (int k = 0; k < K; ++k) y[k] = total[k];
}

template <typename Rows>
RWKVLITE_AVX2 void dot_rows_packed(Rows rows, int64_t n_rows, const float* x, int64_t cols, int64_t group, int bits,
                                   const float* group_x_sums, float* y) {
  int64_t r = 0;
  for (; r + 2 <= n_rows; r += 2) dot_packed_rows<2>(rows, r, x, cols, group, bits, group_x_sums, y + r);
  if (r < n_rows) dot_packed_rows<1>(rows, r, x, cols, group, bits, group_x_sums, y + r);
}

// y[i] += a * (min + scale * q[i]) per i3/i2 group, as am + as * q[i] (axpy_row_portable's order).
RWKVLITE_AVX2 void axpy_packed(float a, const uint8_t* row, int64_t cols, int64_t group, int bits, float* y) {
  const int64_t gbytes = group_bytes(group, bits);
  alignas(32) float codes[128];
  for (int64_t g = 0; g < cols / group; ++g) {
    const uint8_t* p = row + g * gbytes;
    const __m256 as = _mm256_set1_ps(a * fp16_to_float_fast(load_u16(p)));
    const __m256 am = _mm256_set1_ps(a * fp16_to_float_fast(load_u16(p + 2)));
    unpack_group_codes(p + kI4GroupHeaderBytes, group, bits, codes);
    float* yg = y + g * group;
    for (int64_t c = 0; c < group; c += 8) {
      _mm256_storeu_ps(yg + c, _mm256_add_ps(_mm256_loadu_ps(yg + c),
                                             _mm256_add_ps(am, _mm256_mul_ps(as, _mm256_load_ps(codes + c)))));
    }
  }
}

// y[i] += a * row[i] for a row with one scale (or none), as axpy_row_portable computes it.
template <Encoding E>
RWKVLITE_AVX2 void axpy_scaled(float a, const uint8_t* row, int64_t cols, float* y) {
  const float as = a * scale_of<E>(row);
  const __m256 asv = _mm256_set1_ps(as);
  const int64_t body = cols / 8 * 8;
  for (int64_t c = 0; c < body; c += 8) {
    _mm256_storeu_ps(y + c, _mm256_add_ps(_mm256_loadu_ps(y + c), _mm256_mul_ps(asv, load8<E>(row, c))));
  }
  for (int64_t c = body; c < cols; ++c) y[c] += as * load1<E>(row, c);
}

// y[i] += a * (min + scale * q[i]) per group, as am + as * q[i] (axpy_row_portable's order).
RWKVLITE_AVX2 void axpy_i4(float a, const uint8_t* row, int64_t cols, int64_t group, float* y) {
  const int64_t group_bytes = kI4GroupHeaderBytes + group / 2;
  for (int64_t g = 0; g < cols / group; ++g) {
    const uint8_t* p = row + g * group_bytes;
    const __m256 as = _mm256_set1_ps(a * fp16_to_float_fast(load_u16(p)));
    const __m256 am = _mm256_set1_ps(a * fp16_to_float_fast(load_u16(p + 2)));
    float* yg = y + g * group;
    for (int64_t c = 0; c < group; c += 32) {
      __m128i lo, hi;
      unpack_nibbles(p + kI4GroupHeaderBytes + c / 2, lo, hi);
      const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
      for (int k = 0; k < 4; ++k) {
        float* yy = yg + c + 8 * k;
        _mm256_storeu_ps(yy, _mm256_add_ps(_mm256_loadu_ps(yy), _mm256_add_ps(am, _mm256_mul_ps(as, codes8(parts[k])))));
      }
    }
  }
}

bool cpu_has_avx2_f16c() {
  // F16C from CPUID leaf 1 (ECX bit 29) rather than __builtin_cpu_supports("f16c"), which
  // clang before 16 rejects at compile time (the fuzz build is clang-14).
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __builtin_cpu_supports("avx2") && __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
  }();
  return has;
}

// sum(x) over each i4 group, in dot_row's order (8 lanes, then the tail; whole groups have none).
void i4_group_x_sums(const float* x, int64_t cols, int64_t group, std::vector<float>& sums) {
  sums.resize(static_cast<size_t>(cols / group));
  for (size_t g = 0; g < sums.size(); ++g) {
    float lane[8] = {};
    const float* xg = x + static_cast<int64_t>(g) * group;
    for (int64_t i = 0; i < group; i += 8) {
      for (int k = 0; k < 8; ++k) lane[k] += xg[i + k];
    }
    sums[g] = ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7])) + 0.0f;
  }
}

#endif  // RWKVLITE_HAVE_X86_KERNELS

}  // namespace

bool dot_rows_vectorized(Encoding encoding, int64_t cols, const EncodingParams& params) {
#ifdef RWKVLITE_HAVE_X86_KERNELS
  return cpu_has_avx2_f16c() && vector_kernel_covers(encoding, cols, params);
#else
  (void)encoding, (void)cols, (void)params;
  return false;
#endif
}

void dot_rows_portable(const uint8_t* rows, size_t row_stride, int64_t n_rows, const float* x, int64_t cols,
                       Encoding encoding, const EncodingParams& params, float* y) {
  for (int64_t r = 0; r < n_rows; ++r) {
    y[r] = dot_row_portable(rows + static_cast<size_t>(r) * row_stride, x, cols, encoding, params);
  }
}

namespace {

// The vector kernel for these rows, if there is one; false when the caller must go row by row.
template <typename Rows>
bool dot_rows_vector(Rows rows, int64_t n_rows, const float* x, int64_t cols, Encoding encoding,
                     const EncodingParams& params, float* y) {
#ifdef RWKVLITE_HAVE_X86_KERNELS
  if (n_rows <= 0 || !dot_rows_vectorized(encoding, cols, params)) return false;
  switch (encoding) {
    case Encoding::F32: dot_rows_scaled<Encoding::F32>(rows, n_rows, x, cols, y); return true;
    case Encoding::F16: dot_rows_scaled<Encoding::F16>(rows, n_rows, x, cols, y); return true;
    case Encoding::BF16: dot_rows_scaled<Encoding::BF16>(rows, n_rows, x, cols, y); return true;
    case Encoding::I8: dot_rows_scaled<Encoding::I8>(rows, n_rows, x, cols, y); return true;
    case Encoding::B1: dot_rows_scaled<Encoding::B1>(rows, n_rows, x, cols, y); return true;
    case Encoding::I4: {
      thread_local std::vector<float> sums;  // no allocation per call once grown
      i4_group_x_sums(x, cols, params.group_size, sums);
      dot_rows_i4(rows, n_rows, x, cols, params.group_size, sums.data(), y);
      return true;
    }
    case Encoding::I3:
    case Encoding::I2: {
      thread_local std::vector<float> sums;
      i4_group_x_sums(x, cols, params.group_size, sums);  // the same sums for every group encoding
      dot_rows_packed(rows, n_rows, x, cols, params.group_size, group_code_bits(encoding), sums.data(), y);
      return true;
    }
    default: return false;
  }
#else
  (void)rows, (void)n_rows, (void)x, (void)cols, (void)encoding, (void)params, (void)y;
  return false;
#endif
}

}  // namespace

void dot_rows(const uint8_t* rows, size_t row_stride, int64_t n_rows, const float* x, int64_t cols,
              Encoding encoding, const EncodingParams& params, float* y) {
  if (dot_rows_vector(StridedRows{rows, row_stride}, n_rows, x, cols, encoding, params, y)) return;
  dot_rows_portable(rows, row_stride, n_rows, x, cols, encoding, params, y);
}

void dot_rows_gathered(const uint8_t* const* rows, int64_t n_rows, const float* x, int64_t cols, Encoding encoding,
                       const EncodingParams& params, float* y) {
  if (dot_rows_vector(GatheredRows{rows}, n_rows, x, cols, encoding, params, y)) return;
  for (int64_t r = 0; r < n_rows; ++r) y[r] = dot_row_portable(rows[r], x, cols, encoding, params);
}

float dot_row(const uint8_t* row, const float* x, int64_t cols, Encoding encoding, const EncodingParams& params) {
  float y;
  dot_rows(row, 0, 1, x, cols, encoding, params, &y);
  return y;
}

void axpy_row(float a, const uint8_t* row, int64_t cols, Encoding encoding, const EncodingParams& params, float* y) {
#ifdef RWKVLITE_HAVE_X86_KERNELS
  if (dot_rows_vectorized(encoding, cols, params)) {
    switch (encoding) {
      case Encoding::F32: axpy_scaled<Encoding::F32>(a, row, cols, y); return;
      case Encoding::F16: axpy_scaled<Encoding::F16>(a, row, cols, y); return;
      case Encoding::BF16: axpy_scaled<Encoding::BF16>(a, row, cols, y); return;
      case Encoding::I8: axpy_scaled<Encoding::I8>(a, row, cols, y); return;
      case Encoding::B1: axpy_scaled<Encoding::B1>(a, row, cols, y); return;
      case Encoding::I4: axpy_i4(a, row, cols, params.group_size, y); return;
      case Encoding::I3:
      case Encoding::I2: axpy_packed(a, row, cols, params.group_size, group_code_bits(encoding), y); return;
      default: break;
    }
  }
#endif
  axpy_row_portable(a, row, cols, encoding, params, y);
}

}  // namespace rwkvlite::format
