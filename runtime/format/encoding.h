// Names and sizes of the tensor encodings of the compact format.
//
// Every encoding stores a 2-D tensor (rows x cols; higher ranks folded into rows) as rows of
// one fixed encoded size, so row r starts at r * row_bytes and any row range can be read and
// verified without touching the rest. The exact bit layouts are in docs/compact-format.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace rwkvlite::format {

enum class Encoding : uint8_t {
  F32,   // IEEE binary32, stored as is
  F16,   // IEEE binary16, round to nearest even
  BF16,  // bfloat16, round to nearest even
  I8,    // per row: f32 scale, then cols int8 (symmetric, scale = absmax/127)
  I4,    // per group of G columns: f16 scale, f16 min, G/2 bytes of nibbles (asymmetric)
  B1,    // per row: f32 scale (mean |w|), then one sign bit per weight
  I32,   // int32 integer tables (indices, cluster ids), stored as is
  U8,    // raw bytes
  I3,    // as I4 with 3-bit codes: per group f16 scale, f16 min, 3G/8 bytes of packed codes
  I2,    // as I4 with 2-bit codes: per group f16 scale, f16 min, G/4 bytes of packed codes
};

// Bits per code of the group encodings (I4, I3, I2: asymmetric, per group of G columns an f16
// scale and min); 0 for every other encoding.
int group_code_bits(Encoding encoding);
inline bool is_group_encoding(Encoding encoding) { return group_code_bits(encoding) != 0; }

// The parameters an encoding needs beyond its kind. Only the group encodings (I4, I3, I2) have
// one (their group size); every other encoding requires the defaults, so {kind, params} has
// exactly one spelling.
struct EncodingParams {
  int32_t group_size = 0;  // I4, I3, I2: 32, 64 or 128; 0 otherwise
  bool operator==(const EncodingParams&) const = default;
};

// An encoding with its parameters, as named in files ("i4g64").
struct EncodingSpec {
  Encoding encoding = Encoding::F32;
  EncodingParams params;
  bool operator==(const EncodingSpec&) const = default;
};

// "f32", "f16", "bf16", "i8", "i4g32", "i4g64", "i4g128", "b1", "i32", "u8", "i3g32", "i3g64",
// "i3g128", "i2g32", "i2g64", "i2g128".
// Throws UsageError when the parameters are not valid for the encoding.
std::string encoding_name(Encoding encoding, const EncodingParams& params = {});
std::string encoding_name(const EncodingSpec& spec);

// Inverse of encoding_name. parse_encoding throws UsageError listing the known names;
// try_parse_encoding returns nullopt, for readers that report a bad file instead.
EncodingSpec parse_encoding(std::string_view name);
std::optional<EncodingSpec> try_parse_encoding(std::string_view name);

// Every valid name, in the order above, for help texts and tests.
std::span<const char* const> all_encoding_names();

// Throws UsageError unless params are valid for the encoding (I4/I3/I2 group in {32, 64, 128},
// zero elsewhere).
void check_encoding_params(Encoding encoding, const EncodingParams& params);

// Encoded bytes of one row of `cols` values. Throws UsageError for cols < 1, invalid params,
// or a size that would not fit in 62 bits (so callers can multiply by a row count safely after
// their own overflow check).
size_t encoded_row_bytes(Encoding encoding, int64_t cols, const EncodingParams& params = {});
inline size_t encoded_row_bytes(const EncodingSpec& spec, int64_t cols) {
  return encoded_row_bytes(spec.encoding, cols, spec.params);
}

// Encoded bytes of a whole tensor: `rows` rows of `cols` values in the named encoding ("i8",
// "i4g64", ...), without the file's alignment padding. The one size function the compression
// pipeline uses for reports, plans and the dry run, so they agree with the bytes written.
// Throws UsageError for an unknown encoding and as encoded_row_bytes does.
int64_t encoded_tensor_bytes(std::string_view encoding, int64_t rows, int64_t cols);

// True for encodings whose values are integers (I32, U8): they are never quantized.
bool is_integer_encoding(Encoding encoding);

}  // namespace rwkvlite::format
