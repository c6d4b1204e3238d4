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
constexpr int64_t kI4GroupHeaderBytes = 4;  // f16 scale, f16 min
constexpr int64_t kB1HeaderBytes = 4;  // f32 scale

}  // namespace rwkvlite::format::detail
