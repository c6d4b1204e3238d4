// Encoding FP32 rows into the compact format's storage encodings.
//
// Rounding is specified exactly (docs/compact-format.md): value conversions round to nearest
// even (core/half.h), integer codes round half away from zero (std::round, which does not depend
// on the FPU rounding mode), and scales are rounded in the direction that keeps every value
// inside the representable range, which is what makes the per-element error bounds hold.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "runtime/core/error.h"
#include "runtime/core/half.h"
#include "runtime/format/codec.h"
#include "runtime/format/codec_internal.h"

namespace rwkvlite::format {

using namespace detail;

namespace {

constexpr float kF16Max = 65504.0f;

std::string where(int64_t r, int64_t c) { return "row " + std::to_string(r) + ", column " + std::to_string(c); }

std::string value_text(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

void require_finite_row(const float* row, int64_t r, int64_t cols) {
  for (int64_t c = 0; c < cols; ++c) {
    if (!std::isfinite(row[c])) throw InputError("value " + value_text(row[c]) + " at " + where(r, c) + " is not finite");
  }
}

// fp16 bit patterns nearest to v from below / above. fp16 patterns are ordered by magnitude
// within each sign, so one step is +-1 on the pattern; v must be within the finite fp16 range.
uint16_t fp16_round_down(float v) {
  uint16_t h = float_to_fp16(v);
  if (fp16_to_float(h) > v) {
    if (h & 0x8000u) {
      ++h;  // negative (or -0): one step away from zero
    } else if (h == 0) {
      h = 0x8001u;  // below +0: the smallest negative subnormal
    } else {
      --h;
    }
  }
  return h;
}

uint16_t fp16_round_up(float v) {
  uint16_t h = float_to_fp16(v);
  if (fp16_to_float(h) < v) {
    if (h == 0x8000u || h == 0) {
      h = 0x0001u;
    } else if (h & 0x8000u) {
      --h;  // negative: one step toward zero
    } else {
      ++h;
    }
  }
  return h;
}

void encode_f32_row(const float* src, int64_t cols, uint8_t* dst) { std::memcpy(dst, src, static_cast<size_t>(cols) * 4); }

void encode_f16_row(const float* src, int64_t r, int64_t cols, uint8_t* dst) {
  for (int64_t c = 0; c < cols; ++c) {
    if (std::fabs(src[c]) >= 65520.0f) {  // would round to infinity
      throw UsageError("value " + value_text(src[c]) + " at " + where(r, c) + " is beyond the f16 range (+-65504)");
    }
    store_u16(dst + 2 * c, float_to_fp16(src[c]));
  }
}

void encode_bf16_row(const float* src, int64_t r, int64_t cols, uint8_t* dst) {
  for (int64_t c = 0; c < cols; ++c) {
    const uint16_t b = float_to_bf16(src[c]);
    if ((b & 0x7fffu) == 0x7f80u) {  // finite float rounded up to infinity (|v| near FLT_MAX)
      throw UsageError("value " + value_text(src[c]) + " at " + where(r, c) + " is beyond the bf16 range");
    }
    store_u16(dst + 2 * c, b);
  }
}

// Symmetric int8: scale = absmax / 127 rounded to the nearest float, then nudged up one ulp if
// that fell below absmax / 127, so that every |w| / scale <= 127 and no code is clamped; codes
// are round(w / scale), half away from zero, computed in double.
void encode_i8_row(const float* src, int64_t cols, uint8_t* dst) {
  float absmax = 0.0f;
  for (int64_t c = 0; c < cols; ++c) absmax = std::max(absmax, std::fabs(src[c]));
  float scale = static_cast<float>(static_cast<double>(absmax) / 127.0);
  if (static_cast<double>(scale) * 127.0 < static_cast<double>(absmax)) {
    scale = std::nextafter(scale, std::numeric_limits<float>::infinity());
  }
  store_f32(dst, scale);
  int8_t* q = reinterpret_cast<int8_t*>(dst + kI8HeaderBytes);
  if (scale == 0.0f) {
    std::fill(q, q + cols, int8_t{0});
    return;
  }
  const double ds = scale;
  for (int64_t c = 0; c < cols; ++c) {
    const double code = std::round(static_cast<double>(src[c]) / ds);
    q[c] = static_cast<int8_t>(std::clamp(code, -127.0, 127.0));
  }
}

// Asymmetric L = 2^bits - 1 levels per group (i4: 15, i3: 7, i2: 3): min is the group minimum
// rounded DOWN to fp16 and scale is (max - min) / L rounded UP to fp16, so [min, min + L * scale]
// covers the whole group and every value is within scale / 2 of its code's value. Codes are
// round((w - min) / scale), half away from zero, in double. A partial last group holds only the
// remaining columns; its unused code bits are zero.
void encode_group_row(const float* src, int64_t r, int64_t cols, int64_t group, int bits, uint8_t* dst) {
  const int64_t gbytes = group_bytes(group, bits);
  const double levels = static_cast<double>((1 << bits) - 1);
  for (int64_t g0 = 0; g0 < cols; g0 += group) {
    const int64_t n = std::min(group, cols - g0);
    const float* w = src + g0;
    float lo = w[0], hi = w[0];
    for (int64_t i = 1; i < n; ++i) {
      lo = std::min(lo, w[i]);
      hi = std::max(hi, w[i]);
    }
    if (lo < -kF16Max || hi > kF16Max) {
      const int64_t bad = std::find_if(w, w + n, [](float v) { return std::fabs(v) > kF16Max; }) - w;
      throw UsageError("value " + value_text(w[bad]) + " at " + where(r, g0 + bad) + " is beyond the range of the i" +
                       std::to_string(bits) + " encoding's f16 scale and min (+-65504)");
    }
    const uint16_t min_h = fp16_round_down(lo);
    const double min_f = fp16_to_float(min_h);
    const double span = (static_cast<double>(hi) - min_f) / levels;  // <= 131008 / 3: fits fp16
    uint16_t scale_h = fp16_round_up(static_cast<float>(span));
    // float(span) may itself have rounded down; step up until the range really covers hi.
    while (min_f + levels * fp16_to_float(scale_h) < static_cast<double>(hi)) ++scale_h;
    const double scale_f = fp16_to_float(scale_h);

    uint8_t* out = dst + (g0 / group) * gbytes;
    store_u16(out, scale_h);
    store_u16(out + 2, min_h);
    uint8_t* codes = out + kI4GroupHeaderBytes;
    std::fill(codes, codes + group_code_bytes(group, bits), uint8_t{0});
    for (int64_t i = 0; i < n; ++i) {
      const double code = scale_f == 0.0 ? 0.0 : std::round((static_cast<double>(w[i]) - min_f) / scale_f);
      put_group_code(codes, i, bits, static_cast<uint32_t>(std::clamp(code, 0.0, levels)));
    }
  }
}

// 1-bit sign: bit c (LSB-first within each byte) is 1 iff w < 0; the row scale is mean |w|
// (the scale minimising the squared error of sign(w) * scale), summed in double in column order
// and rounded to the nearest float. Zero encodes as +scale; unused bits are zero.
void encode_b1_row(const float* src, int64_t cols, uint8_t* dst) {
  double sum = 0.0;
  for (int64_t c = 0; c < cols; ++c) sum += std::fabs(static_cast<double>(src[c]));
  store_f32(dst, static_cast<float>(sum / static_cast<double>(cols)));
  uint8_t* bits = dst + kB1HeaderBytes;
  std::fill(bits, bits + (cols + 7) / 8, uint8_t{0});
  for (int64_t c = 0; c < cols; ++c) {
    if (src[c] < 0.0f) bits[c / 8] |= static_cast<uint8_t>(1u << (c % 8));
  }
}

void encode_i32_row(const float* src, int64_t r, int64_t cols, uint8_t* dst) {
  for (int64_t c = 0; c < cols; ++c) {
    const float v = src[c];
    // 2^31 is exactly representable; [-2^31, 2^31) is the int32 range.
    if (v != std::trunc(v) || v < -2147483648.0f || v >= 2147483648.0f) {
      throw UsageError("value " + value_text(v) + " at " + where(r, c) + " is not an int32 integer (i32 encoding)");
    }
    store_i32(dst + 4 * c, static_cast<int32_t>(v));
  }
}

void encode_u8_row(const float* src, int64_t r, int64_t cols, uint8_t* dst) {
  for (int64_t c = 0; c < cols; ++c) {
    const float v = src[c];
    if (v != std::trunc(v) || v < 0.0f || v > 255.0f) {
      throw UsageError("value " + value_text(v) + " at " + where(r, c) + " is not a byte 0..255 (u8 encoding)");
    }
    dst[c] = static_cast<uint8_t>(v);
  }
}

uint64_t checked_total_bytes(int64_t rows, size_t row_bytes) {
  if (rows < 0) throw UsageError("negative row count " + std::to_string(rows));
  uint64_t total = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(rows), static_cast<uint64_t>(row_bytes), &total) ||
      total > (uint64_t{1} << 62)) {
    throw UsageError("tensor of " + std::to_string(rows) + " rows of " + std::to_string(row_bytes) + " bytes is too large");
  }
  return total;
}

}  // namespace

void encode_rows_into(const float* src, int64_t rows, int64_t cols, Encoding encoding, const EncodingParams& params,
                      uint8_t* dst, int64_t first_row) {
  const size_t row_bytes = encoded_row_bytes(encoding, cols, params);
  checked_total_bytes(rows, row_bytes);
  for (int64_t i = 0; i < rows; ++i) {
    const float* s = src + i * cols;
    uint8_t* d = dst + static_cast<size_t>(i) * row_bytes;
    const int64_t r = first_row + i;  // for messages
    require_finite_row(s, r, cols);
    switch (encoding) {
      case Encoding::F32: encode_f32_row(s, cols, d); break;
      case Encoding::F16: encode_f16_row(s, r, cols, d); break;
      case Encoding::BF16: encode_bf16_row(s, r, cols, d); break;
      case Encoding::I8: encode_i8_row(s, cols, d); break;
      case Encoding::I4:
      case Encoding::I3:
      case Encoding::I2: encode_group_row(s, r, cols, params.group_size, group_code_bits(encoding), d); break;
      case Encoding::B1: encode_b1_row(s, cols, d); break;
      case Encoding::I32: encode_i32_row(s, r, cols, d); break;
      case Encoding::U8: encode_u8_row(s, r, cols, d); break;
    }
  }
}

std::vector<uint8_t> encode_rows(const float* src, int64_t rows, int64_t cols, Encoding encoding,
                                 const EncodingParams& params) {
  const size_t row_bytes = encoded_row_bytes(encoding, cols, params);
  std::vector<uint8_t> out(checked_total_bytes(rows, row_bytes));
  encode_rows_into(src, rows, cols, encoding, params, out.data());
  return out;
}

void pack_chosen_row(const ChosenRow& row, int64_t cols, const EncodingSpec& spec, uint8_t* dst) {
  const auto fail = [&](const std::string& what) {
    throw Error("pack_chosen_row (" + encoding_name(spec) + "): " + what, kExitInternal);
  };
  if (spec.encoding == Encoding::I8) {
    if (!std::isfinite(row.i8_scale) || row.i8_scale < 0.0f) fail("scale " + value_text(row.i8_scale));
    store_f32(dst, row.i8_scale);
    int8_t* q = reinterpret_cast<int8_t*>(dst + kI8HeaderBytes);
    for (int64_t c = 0; c < cols; ++c) {
      if (row.codes[c] < -127 || row.codes[c] > 127) fail("code " + std::to_string(row.codes[c]));
      q[c] = static_cast<int8_t>(row.codes[c]);
    }
    return;
  }
  const int bits = group_code_bits(spec.encoding);
  if (bits == 0) fail("not an integer encoding with chosen scales");
  const int64_t group = spec.params.group_size;
  const int64_t gbytes = group_bytes(group, bits);
  const int32_t levels = (1 << bits) - 1;
  for (int64_t g = 0; g * group < cols; ++g) {
    const int64_t g0 = g * group, n = std::min(group, cols - g0);
    const uint16_t scale_h = row.scale_bits[g], min_h = row.min_bits[g];
    if ((scale_h & 0x7c00u) == 0x7c00u || (scale_h & 0x8000u)) fail("scale bits " + std::to_string(scale_h));
    if ((min_h & 0x7c00u) == 0x7c00u) fail("min bits " + std::to_string(min_h));
    uint8_t* out = dst + g * gbytes;
    store_u16(out, scale_h);
    store_u16(out + 2, min_h);
    uint8_t* codes = out + kI4GroupHeaderBytes;
    std::fill(codes, codes + group_code_bytes(group, bits), uint8_t{0});
    for (int64_t i = 0; i < n; ++i) {
      const int32_t q = row.codes[g0 + i];
      if (q < 0 || q > levels) fail("code " + std::to_string(q));
      put_group_code(codes, i, bits, static_cast<uint32_t>(q));
    }
  }
}

std::vector<uint8_t> encode_rows_i32(const int32_t* src, int64_t rows, int64_t cols) {
  const size_t row_bytes = encoded_row_bytes(Encoding::I32, cols);
  std::vector<uint8_t> out(checked_total_bytes(rows, row_bytes));
  if (!out.empty()) std::memcpy(out.data(), src, out.size());
  return out;
}

std::vector<float> round_trip_rows(const float* src, int64_t rows, int64_t cols, const EncodingSpec& spec) {
  const std::vector<uint8_t> encoded = encode_rows(src, rows, cols, spec);
  const size_t row_bytes = encoded_row_bytes(spec, cols);
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) decode_row(encoded.data() + r * row_bytes, cols, spec, out.data() + r * cols);
  return out;
}

}  // namespace rwkvlite::format
