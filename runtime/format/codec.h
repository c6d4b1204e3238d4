// Row codecs of the compact format: encode FP32 rows, decode them, and the fused kernels the
// runtime uses to compute with stored rows without dequantizing a whole matrix.
//
// Rows are independent: each carries its own scales, so a single row (a neuron of the
// channel-mix, a row of the head or the embedding) can be read, verified and used alone.
// Encoding is deterministic: the same input gives the same bytes on every platform, because
// scales are computed in double with explicitly specified rounding, never with the FPU's
// current rounding mode or a library's unspecified choices (docs/compact-format.md, "Encodings").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/format/encoding.h"

namespace rwkvlite::format {

// Encodes rows x cols row-major FP32 values; the result has rows * encoded_row_bytes(...) bytes.
// Throws InputError for a NaN or infinite value (a model with one is broken), and UsageError
// when the encoding cannot represent the tensor: |value| beyond the f16 range for f16 or the
// f16 scale/min of i4/i3/i2, a value that is not an exact integer in range for i32 (int32) or u8
// (0..255), or bad params.
std::vector<uint8_t> encode_rows(const float* src, int64_t rows, int64_t cols, Encoding encoding,
                                 const EncodingParams& params = {});
// Same, into dst, which must hold rows * encoded_row_bytes(...) bytes. first_row only offsets
// the row numbers in error messages, for callers encoding a tensor in chunks.
void encode_rows_into(const float* src, int64_t rows, int64_t cols, Encoding encoding, const EncodingParams& params,
                      uint8_t* dst, int64_t first_row = 0);

// Rows whose scales and codes a quantizer chose itself (compress/algo/error_aware_quant.h)
// instead of the encoders above: the row's bytes from those choices, in the layout the
// encoders write. i8 takes `i8_scale` (finite, >= 0) and codes in -127..127; group encodings
// (i4, i3, i2) take per group g the fp16 bit patterns scale_bits[g] (finite, not negative) and
// min_bits[g] (finite), and codes in 0..2^bits - 1. Throws Error (internal) for anything
// outside those ranges. decode_row of the result is, per element, min + code * scale (group
// encodings) or code * scale (i8), computed in float.
struct ChosenRow {
  float i8_scale = 0.0f;
  const uint16_t* scale_bits = nullptr;  // one per group
  const uint16_t* min_bits = nullptr;    // one per group
  const int32_t* codes = nullptr;        // one per column
};
void pack_chosen_row(const ChosenRow& row, int64_t cols, const EncodingSpec& spec, uint8_t* dst);

// Integer tables whose values do not all fit a float exactly (|v| > 2^24): stored as i32.
std::vector<uint8_t> encode_rows_i32(const int32_t* src, int64_t rows, int64_t cols);

// Decodes one row into cols floats. i32 values beyond +-2^24 are rounded to the nearest float;
// use decode_row_i32 for exact integers.
void decode_row(const uint8_t* row, int64_t cols, Encoding encoding, const EncodingParams& params, float* out);
void decode_row_i32(const uint8_t* row, int64_t cols, int32_t* out);

// sum_i row[i] * x[i], computed from the encoded row directly. Agrees with decode_row followed
// by a dot product to float rounding (the summation order differs: 8 interleaved partial sums,
// and for i8/i4/b1 the scale is applied once per row or group instead of per element).
float dot_row(const uint8_t* row, const float* x, int64_t cols, Encoding encoding, const EncodingParams& params);

// y[i] += a * row[i], for neuron-major value rows (one stored row per channel-mix neuron).
void axpy_row(float a, const uint8_t* row, int64_t cols, Encoding encoding, const EncodingParams& params, float* y);

// y[r] = dot_row(rows + r * row_stride, x, ...) for r in [0, n_rows): the matrix-vector kernel
// of stored matrices, several rows at a time.
void dot_rows(const uint8_t* rows, size_t row_stride, int64_t n_rows, const float* x, int64_t cols,
              Encoding encoding, const EncodingParams& params, float* y);

// Several inputs at once (sequence mode): y[t * y_stride + r] = dot_row(row r, x + t * cols)
// for t in [0, n_inputs), bit for bit, each row unpacked once and reused from cache for every
// input. For i32/u8 rows too (as dot_row computes them).
void dot_rows_batch(const uint8_t* rows, size_t row_stride, int64_t n_rows, const float* x, int64_t n_inputs,
                    int64_t cols, Encoding encoding, const EncodingParams& params, float* y, int64_t y_stride);

// The same for rows anywhere in memory (rows[r] is row r), such as the rows of a row cache.
void dot_rows_gathered(const uint8_t* const* rows, int64_t n_rows, const float* x, int64_t cols, Encoding encoding,
                       const EncodingParams& params, float* y);

// The portable definitions of these results (codec_kernels.cpp). On x86-64 CPUs with AVX2 and
// F16C, dot_row, axpy_row and dot_rows use vector kernels instead (codec_matvec.cpp) that give
// the portable results bit for bit, so the CPU changes speed, never numbers; tests compare.
float dot_row_portable(const uint8_t* row, const float* x, int64_t cols, Encoding encoding,
                       const EncodingParams& params);
void axpy_row_portable(float a, const uint8_t* row, int64_t cols, Encoding encoding, const EncodingParams& params,
                       float* y);
void dot_rows_portable(const uint8_t* rows, size_t row_stride, int64_t n_rows, const float* x, int64_t cols,
                       Encoding encoding, const EncodingParams& params, float* y);
// Whether the vector kernels serve rows of this encoding and width on this CPU (not i32/u8,
// nor i4/i3/i2 rows whose last group is partial).
bool dot_rows_vectorized(Encoding encoding, int64_t cols, const EncodingParams& params);

// dot_row's summation order, for code that accumulates the same sums column-wise: element i of
// a row goes to partial sum i mod kDotLanes, except the last cols mod kDotLanes elements, which
// go to a tail in order; combine_dot_lanes adds them up as dot_row does. lanes is
// kDotLanes x n (lane-major), tail n; out[c] is the total of column c. Summing FP32 products
// this way gives dot_row's result bit for bit.
constexpr int64_t kDotLanes = 8;
void combine_dot_lanes(const float* lanes, const float* tail, int64_t n, float* out);

// Checks what checksums cannot: that rows written by some other producer decode to finite
// values and keep padding bits zero. Returns a description of the first problem in
// `rows` consecutive rows, or nullopt. Used by the writer for pre-encoded input and by verify().
std::optional<std::string> check_encoded_rows(const uint8_t* data, int64_t rows, int64_t cols, Encoding encoding,
                                              const EncodingParams& params);

// The same entry points taking an EncodingSpec.
inline std::vector<uint8_t> encode_rows(const float* src, int64_t rows, int64_t cols, const EncodingSpec& spec) {
  return encode_rows(src, rows, cols, spec.encoding, spec.params);
}
inline void decode_row(const uint8_t* row, int64_t cols, const EncodingSpec& spec, float* out) {
  decode_row(row, cols, spec.encoding, spec.params, out);
}
inline float dot_row(const uint8_t* row, const float* x, int64_t cols, const EncodingSpec& spec) {
  return dot_row(row, x, cols, spec.encoding, spec.params);
}
inline void axpy_row(float a, const uint8_t* row, int64_t cols, const EncodingSpec& spec, float* y) {
  axpy_row(a, row, cols, spec.encoding, spec.params, y);
}

// decode(encode(src)): the values a file holding `src` in `spec` gives back, row by row. What
// the quantize pass measures its errors on and the sensitivity profile evaluates.
std::vector<float> round_trip_rows(const float* src, int64_t rows, int64_t cols, const EncodingSpec& spec);

}  // namespace rwkvlite::format
