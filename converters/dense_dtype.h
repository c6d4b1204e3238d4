// The floating-point element types of the dense checkpoint formats (safetensors, .pth) and the
// exact conversions between them and the canonical FP32 values.
//
// Shared so that both writers round the same way (round to nearest even, as torch and numpy do)
// and both refuse the same impossible requests (a value beyond the float16 range).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "runtime/core/error.h"
#include "runtime/core/half.h"

namespace rwkvlite {

static_assert(std::endian::native == std::endian::little,
              "the dense formats are little-endian and are read and written with memcpy");

enum class DenseDtype { F32, F16, BF16 };

inline size_t dense_dtype_size(DenseDtype t) { return t == DenseDtype::F32 ? 4 : 2; }

// The user-facing names ("fp32", "fp16", "bf16") the CLIs take.
inline const char* dense_dtype_option_name(DenseDtype t) {
  switch (t) {
    case DenseDtype::F32: return "fp32";
    case DenseDtype::F16: return "fp16";
    case DenseDtype::BF16: return "bf16";
  }
  return "unknown";
}

inline DenseDtype parse_dense_dtype(const std::string& s) {
  if (s == "fp32") return DenseDtype::F32;
  if (s == "fp16") return DenseDtype::F16;
  if (s == "bf16") return DenseDtype::BF16;
  throw UsageError("unknown dtype '" + s + "' (expected fp32, fp16 or bf16)");
}

// Decodes n little-endian elements of type t into floats (exact: every F16 and BF16 value is
// representable in FP32).
inline void decode_dense(const uint8_t* src, size_t n, DenseDtype t, float* dst) {
  switch (t) {
    case DenseDtype::F32:
      std::memcpy(dst, src, n * 4);
      break;
    case DenseDtype::F16:
      for (size_t i = 0; i < n; ++i) dst[i] = fp16_to_float(static_cast<uint16_t>(src[2 * i] | src[2 * i + 1] << 8));
      break;
    case DenseDtype::BF16:
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_float(static_cast<uint16_t>(src[2 * i] | src[2 * i + 1] << 8));
      break;
  }
}

// Encodes n floats as little-endian elements of type t. A finite value that would become
// infinite (beyond +-65504 in F16) makes the request impossible rather than silently producing
// a model that no longer validates: UsageError naming the tensor.
inline void encode_dense(const float* src, size_t n, DenseDtype t, uint8_t* dst, const std::string& tensor_name) {
  if (t == DenseDtype::F32) {
    std::memcpy(dst, src, n * 4);
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = t == DenseDtype::F16 ? float_to_fp16(src[i]) : float_to_bf16(src[i]);
    const float back = t == DenseDtype::F16 ? fp16_to_float(h) : bf16_to_float(h);
    if (std::isinf(back) && std::isfinite(src[i])) {
      throw UsageError("tensor '" + tensor_name + "' holds " + std::to_string(src[i]) + ", beyond the range of " +
                       dense_dtype_option_name(t) + "; write it as fp32" +
                       (t == DenseDtype::F16 ? std::string(" or bf16") : std::string()));
    }
    dst[2 * i] = static_cast<uint8_t>(h & 0xff);
    dst[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
}

}  // namespace rwkvlite
