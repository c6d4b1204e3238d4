// Layout of the rwkvlite compact file, version 1.0 (docs/compact-format.md):
//
//   [0, 64)                      preamble: magic, version, section offsets/sizes, header xxh64
//   [64, 64 + data_size)         data section: tensors at 64-byte aligned offsets, zero padding
//   [header_offset, file_size)   JSON header: arch, dims, metadata, tensor table
//
// The header is written last so a streaming writer never holds the whole model; the preamble
// is patched at the end, and the file only appears under its name once complete.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/format/encoding.h"

namespace rwkvlite::format {

constexpr char kMagic[8] = {'R', 'W', 'K', 'V', 'L', 'I', 'T', 'E'};
constexpr uint16_t kFormatMajor = 1;  // bumped for any change old readers would misread
constexpr uint16_t kFormatMinor = 0;  // bumped for additive header fields old readers may ignore
constexpr uint32_t kPreambleSize = 64;
constexpr uint64_t kAlignment = 64;                          // tensor offsets, data section size
constexpr uint64_t kMaxHeaderBytes = uint64_t{64} << 20;     // checked before allocating
constexpr uint64_t kMaxHeaderJsonValues = uint64_t{1} << 20; // bounds the parsed header's memory
constexpr int kMaxHeaderJsonDepth = 64;                      // bounds recursion in JSON consumers
constexpr int kMaxTensorRank = 8;
constexpr size_t kMaxTensorNameBytes = 512;
constexpr uint64_t kDefaultChecksumBlockBytes = uint64_t{256} << 10;  // for bulk-read tensors

// The fixed-size preamble, field for field (all little-endian).
struct Preamble {
  uint16_t major = kFormatMajor;
  uint16_t minor = kFormatMinor;
  uint32_t preamble_size = kPreambleSize;
  uint64_t header_offset = 0;
  uint64_t header_size = 0;
  uint64_t data_offset = kPreambleSize;
  uint64_t data_size = 0;
  uint64_t file_size = 0;
  uint64_t header_xxh64 = 0;
};

// Serialises to exactly 64 bytes (magic included). Byte offsets of each field:
// magic 0, major 8, minor 10, preamble_size 12, header_offset 16, header_size 24,
// data_offset 32, data_size 40, file_size 48, header_xxh64 56.
void encode_preamble(const Preamble& p, uint8_t out[kPreambleSize]);
// Parses the fields after the magic (which the caller checks first); no validation.
Preamble decode_preamble(const uint8_t in[kPreambleSize]);

// One tensor of the file, as described by the header.
struct TensorInfo {
  std::string name;
  EncodingSpec encoding;
  std::vector<int64_t> shape;  // logical shape, PyTorch order
  int64_t rows = 0, cols = 0;  // shape folded to 2-D: cols = last dim, rows = product of the rest
  uint64_t offset = 0;         // relative to the data section, multiple of kAlignment
  uint64_t nbytes = 0;         // rows * row_bytes
  uint64_t row_bytes = 0;      // encoded_row_bytes(encoding, cols)
  uint64_t rows_per_block = 0; // rows covered by one checksum
  std::vector<uint64_t> block_xxh64;  // one per block of rows_per_block rows (the last may be short)

  uint64_t block_count() const { return rows_per_block ? (static_cast<uint64_t>(rows) + rows_per_block - 1) / rows_per_block : 0; }
  // Rows [first_row, first_row + count) of block b.
  uint64_t block_first_row(uint64_t b) const { return b * rows_per_block; }
  uint64_t block_rows(uint64_t b) const;
};

// Rows and columns of a shape viewed as a matrix (rank 0 is 1 x 1). Returns false when a
// dimension is < 1, the rank exceeds kMaxTensorRank, or the element count exceeds 2^62.
bool fold_shape(const std::vector<int64_t>& shape, int64_t* rows, int64_t* cols);

// Rows per checksum block for a tensor that is read in bulk: about kDefaultChecksumBlockBytes.
uint64_t default_rows_per_block(uint64_t row_bytes);

inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// 64-bit xxHash (XXH64, seed 0): header and block checksums.
uint64_t xxh64(const void* data, size_t n);
// Checksums are written in the header as 16 lower-case hex digits each (most significant
// first), concatenated in block order: one JSON string per tensor instead of one JSON value per
// block keeps a header with hundreds of thousands of row checksums small to parse.
std::string checksums_to_hex(const std::vector<uint64_t>& sums);
// Inverse; false unless `hex` is exactly 16 * count lower-case hex digits.
bool checksums_from_hex(const std::string& hex, uint64_t count, std::vector<uint64_t>* out);

// Tensor names: 1..kMaxTensorNameBytes printable ASCII characters (no spaces or control
// characters), so they print unambiguously in messages and logs.
bool is_valid_tensor_name(const std::string& name);

}  // namespace rwkvlite::format
