// Decoding stored rows and computing with them directly (dot products for key/receptance rows,
// axpy for neuron-major value rows), without materialising a dequantized matrix. These are the
// portable kernels, and the definition of every result: codec_matvec.cpp's vector kernels,
// which dot_row and axpy_row use where the CPU has them, reproduce them bit for bit.
//
// The kernels convert a chunk of at most kChunk columns into a small stack buffer of unscaled
// values, then run simple loops over it that GCC auto-vectorizes at -O2/-O3 (8 independent
// partial sums break the loop-carried dependency of a single float accumulator). Scales are
// applied once per row (i8, b1) or per group (i4, i3, i2): dot = scale * sum(q * x) (+ min * sum(x)).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/format/codec.h"
#include "runtime/format/codec_internal.h"

namespace rwkvlite::format {

using namespace detail;

namespace {

constexpr int64_t kChunk = 256;  // multiple of 8 and of every i4 group size; 1 KiB of stack

// The eight +-1 values of each b1 byte (bit k = column k, 1 = negative): 8 KiB, built at compile time.
struct SignTable {
  float v[256][8];
};
constexpr SignTable make_sign_table() {
  SignTable t{};
  for (int b = 0; b < 256; ++b) {
    for (int k = 0; k < 8; ++k) t.v[b][k] = (b >> k) & 1 ? -1.0f : 1.0f;
  }
  return t;
}
constexpr SignTable kSignTable = make_sign_table();

// The fixed order in which dot_row adds its partial sums (combine_dot_lanes repeats it).
inline float combine_lanes(const float* l, float tail) {
  return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7])) + tail;
}

// Eight interleaved partial sums of a[i] * b[i], kept across chunks of a row.
struct DotAccumulator {
  static_assert(kDotLanes == 8, "add() and combine_lanes() are written for 8 lanes");
  float lane[kDotLanes] = {};
  float tail = 0.0f;

  void add(const float* a, const float* b, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (int k = 0; k < 8; ++k) lane[k] += a[i + k] * b[i + k];
    }
    for (; i < n; ++i) tail += a[i] * b[i];
  }
  void add_sum(const float* b, int64_t n) {  // sum of b (the i4 "min" term)
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (int k = 0; k < 8; ++k) lane[k] += b[i + k];
    }
    for (; i < n; ++i) tail += b[i];
  }
  float total() const { return combine_lanes(lane, tail); }
};

// Unscaled values of columns [c0, c0 + n) of a row into buf: the stored value for f32/f16/bf16/
// i32/u8, the int8 code for i8, +-1 for b1. (i4 is handled per group.)
void unpack_chunk(const uint8_t* row, int64_t c0, int64_t n, Encoding encoding, float* buf) {
  switch (encoding) {
    case Encoding::F32: std::memcpy(buf, row + 4 * c0, static_cast<size_t>(n) * 4); break;
    case Encoding::F16: {
      // Copy the (possibly unaligned) halves into an aligned array first: the conversion loop
      // over a plain array vectorizes, one over memcpy loads does not.
      uint16_t h[kChunk];
      std::memcpy(h, row + 2 * c0, static_cast<size_t>(n) * 2);
      for (int64_t i = 0; i < n; ++i) buf[i] = fp16_to_float_fast(h[i]);
      break;
    }
    case Encoding::BF16: {
      uint16_t h[kChunk];
      std::memcpy(h, row + 2 * c0, static_cast<size_t>(n) * 2);
      for (int64_t i = 0; i < n; ++i) buf[i] = bf16_to_float_fast(h[i]);
      break;
    }
    case Encoding::I8: {
      const auto* q = reinterpret_cast<const int8_t*>(row + kI8HeaderBytes + c0);
      for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<float>(q[i]);
      break;
    }
    case Encoding::B1: {
      // c0 is a multiple of kChunk, hence of 8: whole bytes, expanded through a table.
      const uint8_t* bits = row + kB1HeaderBytes + c0 / 8;
      for (int64_t j = 0; j < n / 8; ++j) std::memcpy(buf + 8 * j, kSignTable.v[bits[j]], 8 * sizeof(float));
      if (n % 8) std::memcpy(buf + n / 8 * 8, kSignTable.v[bits[n / 8]], static_cast<size_t>(n % 8) * sizeof(float));
      break;
    }
    case Encoding::I32:
      for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<float>(load_i32(row + 4 * (c0 + i)));
      break;
    case Encoding::U8:
      for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<float>(row[c0 + i]);
      break;
    case Encoding::I4:
    case Encoding::I3:
    case Encoding::I2: break;  // not reached: callers use unpack_group
  }
}

// Row-wide scale applied after summing unscaled values (1 for unscaled encodings).
float row_scale(const uint8_t* row, Encoding encoding) {
  if (encoding == Encoding::I8 || encoding == Encoding::B1) return load_f32(row);
  return 1.0f;
}

struct GroupInfo {
  float scale, min;
  int64_t n;  // real columns in this group
};

// Codes of group g of a group-encoded row (i4, i3, i2) into buf (group floats) and the
// group's scale and min.
GroupInfo unpack_group(const uint8_t* row, int64_t g, int64_t cols, int64_t group, int bits, float* buf) {
  const uint8_t* p = row + g * group_bytes(group, bits);
  GroupInfo info{fp16_to_float_fast(load_u16(p)), fp16_to_float_fast(load_u16(p + 2)), std::min(group, cols - g * group)};
  unpack_group_codes(p + kI4GroupHeaderBytes, group, bits, buf);
  return info;
}

std::string col_text(int64_t r, int64_t c) { return "row " + std::to_string(r) + ", column " + std::to_string(c); }

}  // namespace

void decode_row(const uint8_t* row, int64_t cols, Encoding encoding, const EncodingParams& params, float* out) {
  if (const int bits = group_code_bits(encoding)) {
    const int64_t group = params.group_size;
    float buf[128];
    for (int64_t g = 0; g * group < cols; ++g) {
      const GroupInfo info = unpack_group(row, g, cols, group, bits, buf);
      float* o = out + g * group;
      for (int64_t i = 0; i < info.n; ++i) o[i] = info.min + buf[i] * info.scale;
    }
    return;
  }
  const float scale = row_scale(row, encoding);
  for (int64_t c0 = 0; c0 < cols; c0 += kChunk) {
    const int64_t n = std::min(kChunk, cols - c0);
    unpack_chunk(row, c0, n, encoding, out + c0);
    if (encoding == Encoding::I8 || encoding == Encoding::B1) {
      for (int64_t i = 0; i < n; ++i) out[c0 + i] *= scale;
    }
  }
}

void decode_row_i32(const uint8_t* row, int64_t cols, int32_t* out) {
  std::memcpy(out, row, static_cast<size_t>(cols) * 4);
}

float dot_row_portable(const uint8_t* row, const float* x, int64_t cols, Encoding encoding,
                       const EncodingParams& params) {
  if (const int bits = group_code_bits(encoding)) {
    const int64_t group = params.group_size;
    float buf[128];
    float total = 0.0f;
    for (int64_t g = 0; g * group < cols; ++g) {
      const GroupInfo info = unpack_group(row, g, cols, group, bits, buf);
      DotAccumulator qx, sx;
      qx.add(buf, x + g * group, info.n);
      sx.add_sum(x + g * group, info.n);
      total += info.scale * qx.total() + info.min * sx.total();
    }
    return total;
  }
  float buf[kChunk];
  DotAccumulator acc;
  for (int64_t c0 = 0; c0 < cols; c0 += kChunk) {
    const int64_t n = std::min(kChunk, cols - c0);
    if (encoding == Encoding::F32) {
      // Row data may be unaligned; memcpy into the buffer keeps the loads well-defined.
      std::memcpy(buf, row + 4 * c0, static_cast<size_t>(n) * 4);
    } else {
      unpack_chunk(row, c0, n, encoding, buf);
    }
    acc.add(buf, x + c0, n);
  }
  return row_scale(row, encoding) * acc.total();
}

void axpy_row_portable(float a, const uint8_t* row, int64_t cols, Encoding encoding, const EncodingParams& params,
                       float* y) {
  if (const int bits = group_code_bits(encoding)) {
    const int64_t group = params.group_size;
    float buf[128];
    for (int64_t g = 0; g * group < cols; ++g) {
      const GroupInfo info = unpack_group(row, g, cols, group, bits, buf);
      const float as = a * info.scale, am = a * info.min;
      float* yy = y + g * group;
      for (int64_t i = 0; i < info.n; ++i) yy[i] += am + as * buf[i];
    }
    return;
  }
  const float as = a * row_scale(row, encoding);
  float buf[kChunk];
  for (int64_t c0 = 0; c0 < cols; c0 += kChunk) {
    const int64_t n = std::min(kChunk, cols - c0);
    unpack_chunk(row, c0, n, encoding, buf);
    float* yy = y + c0;
    for (int64_t i = 0; i < n; ++i) yy[i] += as * buf[i];
  }
}

// Compiled twice, for AVX2 and baseline x86-64, chosen at load time; no FMA in either, so both
// give the same bits (the loops of DotAccumulator vectorize to 8-wide adds and multiplies).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RWKVLITE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RWKVLITE_CLONES
#endif

RWKVLITE_CLONES void dot_rows_batch(const uint8_t* rows, size_t row_stride, int64_t n_rows, const float* x,
                                    int64_t n_inputs, int64_t cols, Encoding encoding, const EncodingParams& params,
                                    float* y, int64_t y_stride) {
  // Each row is unpacked once into unscaled floats (exact) and then used for every input: the
  // same products and the same DotAccumulator order as dot_row_portable, so the same bits.
  thread_local std::vector<float> buf, group_scale, group_min, x_sums;
  buf.resize(static_cast<size_t>(cols));
  if (const int bits = group_code_bits(encoding)) {
    const int64_t group = params.group_size, groups = (cols + group - 1) / group;
    group_scale.resize(static_cast<size_t>(groups));
    group_min.resize(static_cast<size_t>(groups));
    x_sums.resize(static_cast<size_t>(groups * n_inputs));
    for (int64_t t = 0; t < n_inputs; ++t) {
      for (int64_t g = 0; g < groups; ++g) {
        DotAccumulator sx;
        sx.add_sum(x + t * cols + g * group, std::min(group, cols - g * group));
        x_sums[static_cast<size_t>(t * groups + g)] = sx.total();
      }
    }
    for (int64_t r = 0; r < n_rows; ++r) {
      const uint8_t* row = rows + static_cast<size_t>(r) * row_stride;
      for (int64_t g = 0; g < groups; ++g) {
        const GroupInfo info = unpack_group(row, g, cols, group, bits, buf.data() + g * group);
        group_scale[static_cast<size_t>(g)] = info.scale;
        group_min[static_cast<size_t>(g)] = info.min;
      }
      for (int64_t t = 0; t < n_inputs; ++t) {
        float total = 0.0f;
        for (int64_t g = 0; g < groups; ++g) {
          DotAccumulator qx;
          qx.add(buf.data() + g * group, x + t * cols + g * group, std::min(group, cols - g * group));
          total += group_scale[static_cast<size_t>(g)] * qx.total() +
                   group_min[static_cast<size_t>(g)] * x_sums[static_cast<size_t>(t * groups + g)];
        }
        y[t * y_stride + r] = total;
      }
    }
    return;
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* row = rows + static_cast<size_t>(r) * row_stride;
    for (int64_t c0 = 0; c0 < cols; c0 += kChunk) unpack_chunk(row, c0, std::min(kChunk, cols - c0), encoding, buf.data() + c0);
    const float scale = row_scale(row, encoding);
    for (int64_t t = 0; t < n_inputs; ++t) {
      DotAccumulator acc;
      acc.add(buf.data(), x + t * cols, cols);
      y[t * y_stride + r] = scale * acc.total();
    }
  }
}

void combine_dot_lanes(const float* lanes, const float* tail, int64_t n, float* out) {
  for (int64_t c = 0; c < n; ++c) {
    float l[kDotLanes];
    for (int64_t k = 0; k < kDotLanes; ++k) l[k] = lanes[k * n + c];
    out[c] = combine_lanes(l, tail[c]);
  }
}

std::optional<std::string> check_encoded_rows(const uint8_t* data, int64_t rows, int64_t cols, Encoding encoding,
                                              const EncodingParams& params) {
  const size_t row_bytes = encoded_row_bytes(encoding, cols, params);
  auto bad_scale = [](float s) { return !std::isfinite(s) || std::signbit(s); };
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = data + static_cast<size_t>(r) * row_bytes;
    switch (encoding) {
      case Encoding::F32:
        for (int64_t c = 0; c < cols; ++c) {
          if (!std::isfinite(load_f32(row + 4 * c))) return "non-finite f32 value at " + col_text(r, c);
        }
        break;
      case Encoding::F16:
        for (int64_t c = 0; c < cols; ++c) {
          if ((load_u16(row + 2 * c) & 0x7c00u) == 0x7c00u) return "non-finite f16 value at " + col_text(r, c);
        }
        break;
      case Encoding::BF16:
        for (int64_t c = 0; c < cols; ++c) {
          if ((load_u16(row + 2 * c) & 0x7f80u) == 0x7f80u) return "non-finite bf16 value at " + col_text(r, c);
        }
        break;
      case Encoding::I8: {
        if (bad_scale(load_f32(row))) return "i8 scale of row " + std::to_string(r) + " is negative or not finite";
        const auto* q = reinterpret_cast<const int8_t*>(row + kI8HeaderBytes);
        for (int64_t c = 0; c < cols; ++c) {
          if (q[c] == -128) return "i8 code -128 (outside -127..127) at " + col_text(r, c);
        }
        break;
      }
      case Encoding::I4:
      case Encoding::I3:
      case Encoding::I2: {
        const int bits = group_code_bits(encoding);
        const std::string name = "i" + std::to_string(bits);
        const int64_t group = params.group_size;
        for (int64_t g = 0; g * group < cols; ++g) {
          const uint8_t* p = row + g * group_bytes(group, bits);
          const float scale = fp16_to_float_fast(load_u16(p)), min = fp16_to_float_fast(load_u16(p + 2));
          if (bad_scale(scale) || !std::isfinite(min)) {
            return name + " scale or min of row " + std::to_string(r) + ", group " + std::to_string(g) +
                   " is negative or not finite";
          }
          // Unused codes of a partial last group must be zero: the format has one encoding per tensor.
          for (int64_t i = std::min(group, cols - g * group); i < group; ++i) {
            if (get_group_code(p + kI4GroupHeaderBytes, i, bits) != 0) {
              return "non-zero padding " + std::string(bits == 4 ? "nibble" : "code") + " in row " + std::to_string(r) +
                     " (" + name + ")";
            }
          }
        }
        break;
      }
      case Encoding::B1: {
        if (bad_scale(load_f32(row))) return "b1 scale of row " + std::to_string(r) + " is negative or not finite";
        if (cols % 8 != 0) {
          const uint8_t last = row[kB1HeaderBytes + cols / 8];
          if (last >> (cols % 8)) return "non-zero padding bits in row " + std::to_string(r) + " (b1)";
        }
        break;
      }
      case Encoding::I32:
      case Encoding::U8: break;  // every bit pattern is a valid integer
    }
  }
  return std::nullopt;
}

}  // namespace rwkvlite::format
