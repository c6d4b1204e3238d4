// Byte-level helpers shared by the codec translation units (not part of the public API).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace rwkvlite::format::detail {

// The format is little-endian and the codecs copy rows with memcpy; a big-endian port would
// need byte swaps in these helpers and in the bulk f32/i32 paths.
static_assert(std::endian::native == std::endian::little, "rwkvlite's compact format code assumes a little-endian host");

inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void store_f32(uint8_t* p, float v) { std::memcpy(p, &v, 4); }
inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void store_i32(uint8_t* p, int32_t v) { std::memcpy(p, &v, 4); }

// fp16 -> float without branches, so the decode and dot loops vectorize. Exact, and equal to
// core/half.h's fp16_to_float for all 65536 inputs (tested). Subnormals are converted through
// an exact integer-times-2^-24 product rather than float subnormal arithmetic, so the result
// does not depend on flush-to-zero / denormals-are-zero modes.
inline float fp16_to_float_fast(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t mag = h & 0x7fffu;
  const uint32_t exp = mag >> 10;
  // Selections by all-ones/all-zeros masks rather than ?:, which GCC turns into branches
  // that stop the loops calling this from vectorizing.
  const uint32_t is_special = 0u - static_cast<uint32_t>(exp == 31);
  const uint32_t is_subnormal = 0u - static_cast<uint32_t>(exp == 0);
  uint32_t bits = (mag << 13) + (112u << 23);  // rebias the exponent from 15 to 127
  bits += is_special & (112u << 23);           // inf / nan: exponent 31 -> 255
  const float subnormal = static_cast<float>(static_cast<int32_t>(mag)) * 0x1p-24f;
  uint32_t sub_bits;
  std::memcpy(&sub_bits, &subnormal, 4);
  bits = ((bits & ~is_subnormal) | (sub_bits & is_subnormal)) | sign;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float bf16_to_float_fast(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Byte sizes of the per-row / per-group headers.
constexpr int64_t kI8HeaderBytes = 4;  // f32 scale
constexpr int64_t kI4GroupHeaderBytes = 4;  // f16 scale, f16 min (every group encoding: i4, i3, i2)

// The packed codes of a group encoding: code i occupies bits [i * bits, (i + 1) * bits) of the
// group's code bytes read as one little-endian bit stream (LSB first), so i4's even columns
// are low nibbles. A group's codes take group * bits / 8 bytes (group is a multiple of 8).
inline int64_t group_code_bytes(int64_t group, int bits) { return group * bits / 8; }
inline int64_t group_bytes(int64_t group, int bits) { return kI4GroupHeaderBytes + group_code_bytes(group, bits); }

inline uint32_t get_group_code(const uint8_t* codes, int64_t i, int bits) {
  const int64_t bit = i * bits, byte = bit / 8, shift = bit % 8;
  uint32_t v = codes[byte];
  if (shift + bits > 8) v |= static_cast<uint32_t>(codes[byte + 1]) << 8;  // straddles two bytes (i3)
  return (v >> shift) & ((1u << bits) - 1u);
}

// ORs code q into zeroed code bytes.
inline void put_group_code(uint8_t* codes, int64_t i, int bits, uint32_t q) {
  const int64_t bit = i * bits, byte = bit / 8, shift = bit % 8;
  const uint32_t v = q << shift;
  codes[byte] |= static_cast<uint8_t>(v & 0xffu);
  if (shift + bits > 8) codes[byte + 1] |= static_cast<uint8_t>(v >> 8);
}

// All `group` codes of a group as floats; whole bytes at a time (8 codes per 3 bytes for i3).
inline void unpack_group_codes(const uint8_t* codes, int64_t group, int bits, float* out) {
  if (bits == 4) {
    for (int64_t j = 0; j < group / 2; ++j) {
      out[2 * j] = static_cast<float>(codes[j] & 15u);
      out[2 * j + 1] = static_cast<float>(codes[j] >> 4);
    }
  } else if (bits == 3) {
    for (int64_t j = 0; j < group / 8; ++j) {
      const uint8_t* b = codes + 3 * j;
      const uint32_t v = b[0] | (static_cast<uint32_t>(b[1]) << 8) | (static_cast<uint32_t>(b[2]) << 16);
      for (int k = 0; k < 8; ++k) out[8 * j + k] = static_cast<float>((v >> (3 * k)) & 7u);
    }
  } else {
    for (int64_t j = 0; j < group / 4; ++j) {
      for (int k = 0; k < 4; ++k) out[4 * j + k] = static_cast<float>((codes[j] >> (2 * k)) & 3u);
    }
  }
}
constexpr int64_t kB1HeaderBytes = 4;  // f32 scale

}  // namespace rwkvlite::format::detail
