#include "runtime/format/encoding.h"

#include <array>

#include "runtime/core/error.h"

namespace rwkvlite::format {

namespace {

constexpr std::array<const char*, 16> kNames = {"f32",   "f16",   "bf16",   "i8",    "i4g32", "i4g64",
                                                "i4g128", "b1",   "i32",    "u8",    "i3g32", "i3g64",
                                                "i3g128", "i2g32", "i2g64", "i2g128"};

// The largest row size we accept: far above any real row, and small enough that
// row_bytes * rows overflow checks in callers stay simple.
constexpr uint64_t kMaxRowBytes = uint64_t{1} << 62;

std::string known_names() {
  std::string s;
  for (const char* n : kNames) {
    if (!s.empty()) s += ", ";
    s += n;
  }
  return s;
}

}  // namespace

std::span<const char* const> all_encoding_names() { return kNames; }

bool is_integer_encoding(Encoding encoding) { return encoding == Encoding::I32 || encoding == Encoding::U8; }

int group_code_bits(Encoding encoding) {
  switch (encoding) {
    case Encoding::I4: return 4;
    case Encoding::I3: return 3;
    case Encoding::I2: return 2;
    default: return 0;
  }
}

void check_encoding_params(Encoding encoding, const EncodingParams& params) {
  if (const int bits = group_code_bits(encoding)) {
    const int32_t g = params.group_size;
    if (g != 32 && g != 64 && g != 128) {
      throw UsageError("the i" + std::to_string(bits) + " encoding needs a group size of 32, 64 or 128, not " +
                       std::to_string(g));
    }
  } else if (params.group_size != 0) {
    throw UsageError("only the i4, i3 and i2 encodings take a group size (got " + std::to_string(params.group_size) + ")");
  }
}

std::string encoding_name(Encoding encoding, const EncodingParams& params) {
  check_encoding_params(encoding, params);
  switch (encoding) {
    case Encoding::F32: return "f32";
    case Encoding::F16: return "f16";
    case Encoding::BF16: return "bf16";
    case Encoding::I8: return "i8";
    case Encoding::I4: return "i4g" + std::to_string(params.group_size);
    case Encoding::I3: return "i3g" + std::to_string(params.group_size);
    case Encoding::I2: return "i2g" + std::to_string(params.group_size);
    case Encoding::B1: return "b1";
    case Encoding::I32: return "i32";
    case Encoding::U8: return "u8";
  }
  throw UsageError("unknown encoding value " + std::to_string(static_cast<int>(encoding)));
}

std::string encoding_name(const EncodingSpec& spec) { return encoding_name(spec.encoding, spec.params); }

std::optional<EncodingSpec> try_parse_encoding(std::string_view name) {
  // Exact, case-sensitive names only: a file either uses the canonical spelling or is wrong.
  if (name == "f32") return EncodingSpec{Encoding::F32, {}};
  if (name == "f16") return EncodingSpec{Encoding::F16, {}};
  if (name == "bf16") return EncodingSpec{Encoding::BF16, {}};
  if (name == "i8") return EncodingSpec{Encoding::I8, {}};
  if (name == "i4g32") return EncodingSpec{Encoding::I4, {32}};
  if (name == "i4g64") return EncodingSpec{Encoding::I4, {64}};
  if (name == "i4g128") return EncodingSpec{Encoding::I4, {128}};
  if (name == "i3g32") return EncodingSpec{Encoding::I3, {32}};
  if (name == "i3g64") return EncodingSpec{Encoding::I3, {64}};
  if (name == "i3g128") return EncodingSpec{Encoding::I3, {128}};
  if (name == "i2g32") return EncodingSpec{Encoding::I2, {32}};
  if (name == "i2g64") return EncodingSpec{Encoding::I2, {64}};
  if (name == "i2g128") return EncodingSpec{Encoding::I2, {128}};
  if (name == "b1") return EncodingSpec{Encoding::B1, {}};
  if (name == "i32") return EncodingSpec{Encoding::I32, {}};
  if (name == "u8") return EncodingSpec{Encoding::U8, {}};
  return std::nullopt;
}

EncodingSpec parse_encoding(std::string_view name) {
  if (auto spec = try_parse_encoding(name)) return *spec;
  throw UsageError("unknown encoding '" + std::string(name) + "' (known: " + known_names() + ")");
}

size_t encoded_row_bytes(Encoding encoding, int64_t cols, const EncodingParams& params) {
  check_encoding_params(encoding, params);
  if (cols < 1) throw UsageError("a row needs at least one column, not " + std::to_string(cols));
  // Every formula below stays far from overflow for cols < 2^60.
  if (cols >= (int64_t{1} << 60)) throw UsageError("row of " + std::to_string(cols) + " columns is too long");
  const uint64_t c = static_cast<uint64_t>(cols);
  uint64_t bytes = 0;
  switch (encoding) {
    case Encoding::F32: bytes = 4 * c; break;
    case Encoding::F16:
    case Encoding::BF16: bytes = 2 * c; break;
    case Encoding::I8: bytes = 4 + c; break;
    case Encoding::I4:
    case Encoding::I3:
    case Encoding::I2: {
      // Every group whole, its codes packed into g * bits / 8 bytes (g is a multiple of 8).
      const uint64_t g = static_cast<uint64_t>(params.group_size);
      const uint64_t groups = (c + g - 1) / g;
      bytes = groups * (4 + g * static_cast<uint64_t>(group_code_bits(encoding)) / 8);
      break;
    }
    case Encoding::B1: bytes = 4 + (c + 7) / 8; break;
    case Encoding::I32: bytes = 4 * c; break;
    case Encoding::U8: bytes = c; break;
  }
  if (bytes > kMaxRowBytes) throw UsageError("row of " + std::to_string(cols) + " columns is too long");
  return static_cast<size_t>(bytes);
}

int64_t encoded_tensor_bytes(std::string_view encoding, int64_t rows, int64_t cols) {
  return rows * static_cast<int64_t>(encoded_row_bytes(parse_encoding(encoding), cols));
}

}  // namespace rwkvlite::format
