#include "runtime/format/compact_writer.h"

#include <algorithm>
#include <cstring>

#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/core/tensor.h"
#include "runtime/format/codec.h"
#include "runtime/format/compact_header.h"

namespace rwkvlite::format {

namespace {

// Rows are encoded and hashed in chunks of whole checksum blocks of about this size, so a
// tensor never needs a second full-size copy in memory.
constexpr uint64_t kChunkBytes = uint64_t{4} << 20;

}  // namespace

CompactWriter::CompactWriter(const std::string& path) : path_(path), file_(std::make_unique<AtomicFile>(path)) {
  // Placeholder preamble; the real one is patched in by finish() once every offset is known.
  file_->write_zeros(kPreambleSize);
}

CompactWriter::~CompactWriter() = default;  // an unfinished AtomicFile removes its temporary

void CompactWriter::check_usable() const {
  if (finished_) throw UsageError("compact writer for '" + path_ + "': finish() was already called");
  if (failed_) throw UsageError("compact writer for '" + path_ + "': an earlier tensor failed to write");
}

uint64_t CompactWriter::data_bytes() const { return file_->position() - kPreambleSize; }

TensorInfo CompactWriter::describe(const std::string& name, const EncodingSpec& encoding,
                                   const std::vector<int64_t>& shape, uint64_t rows_per_block) const {
  check_usable();
  if (!is_valid_tensor_name(name)) {
    throw UsageError("invalid tensor name '" + name + "': use 1.." + std::to_string(kMaxTensorNameBytes) +
                     " printable ASCII characters without spaces");
  }
  if (names_.count(name)) throw UsageError("tensor '" + name + "' was already added to '" + path_ + "'");
  TensorInfo t;
  t.name = name;
  t.encoding = encoding;
  t.shape = shape;
  if (!fold_shape(shape, &t.rows, &t.cols)) {
    throw UsageError("tensor '" + name + "' has shape " + shape_to_string(shape) +
                     ": dimensions must be >= 1, rank <= " + std::to_string(kMaxTensorRank) +
                     " and the element count <= 2^62");
  }
  t.row_bytes = encoded_row_bytes(encoding, t.cols);  // validates the params
  if (__builtin_mul_overflow(static_cast<uint64_t>(t.rows), t.row_bytes, &t.nbytes)) {
    throw UsageError("tensor '" + name + "' is too large");
  }
  const uint64_t rpb = rows_per_block == kChecksumDefaultBlocks ? default_rows_per_block(t.row_bytes) : rows_per_block;
  t.rows_per_block = std::min<uint64_t>(rpb, static_cast<uint64_t>(t.rows));
  return t;
}

template <typename EncodeChunk>
void CompactWriter::write_tensor(TensorInfo info, EncodeChunk encode_chunk) {
  failed_ = true;  // until this tensor is completely written
  const uint64_t block_bytes = info.rows_per_block * info.row_bytes;
  const uint64_t blocks_per_chunk = std::max<uint64_t>(1, kChunkBytes / std::max<uint64_t>(block_bytes, 1));
  const uint64_t chunk_rows = blocks_per_chunk * info.rows_per_block;
  const uint64_t rows = static_cast<uint64_t>(info.rows);

  file_->write_zeros(align_up(data_bytes(), kAlignment) - data_bytes());
  info.offset = data_bytes();
  std::vector<uint8_t> chunk;
  for (uint64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
    const uint64_t n = std::min(chunk_rows, rows - r0);
    chunk.resize(n * info.row_bytes);
    encode_chunk(r0, n, chunk.data());
    for (uint64_t b0 = 0; b0 < n; b0 += info.rows_per_block) {
      const uint64_t block_rows = std::min(info.rows_per_block, n - b0);
      info.block_xxh64.push_back(xxh64(chunk.data() + b0 * info.row_bytes, block_rows * info.row_bytes));
    }
    file_->write(chunk.data(), chunk.size());
  }
  names_.insert(info.name);
  tensors_.push_back(std::move(info));
  failed_ = false;
}

void CompactWriter::add_tensor(const std::string& name, const EncodingSpec& encoding, const std::vector<int64_t>& shape,
                               const float* data, uint64_t rows_per_block) {
  TensorInfo info = describe(name, encoding, shape, rows_per_block);
  const int64_t cols = info.cols;
  write_tensor(std::move(info), [&](uint64_t r0, uint64_t n, uint8_t* dst) {
    try {
      encode_rows_into(data + r0 * static_cast<uint64_t>(cols), static_cast<int64_t>(n), cols, encoding.encoding,
                       encoding.params, dst, static_cast<int64_t>(r0));
    } catch (const InputError& e) {
      throw InputError("tensor '" + name + "': " + e.what());
    } catch (const UsageError& e) {
      throw UsageError("tensor '" + name + "': " + e.what());
    }
  });
}

void CompactWriter::add_tensor(const std::string& name, const EncodingSpec& encoding, const std::vector<int64_t>& shape,
                               const uint8_t* encoded, uint64_t nbytes, uint64_t rows_per_block) {
  TensorInfo info = describe(name, encoding, shape, rows_per_block);
  if (nbytes != info.nbytes) {
    throw UsageError("tensor '" + name + "': " + std::to_string(nbytes) + " encoded bytes given, but " +
                     std::to_string(info.rows) + " " + encoding_name(encoding) + " rows of " + std::to_string(info.cols) +
                     " columns take " + std::to_string(info.nbytes));
  }
  if (auto problem = check_encoded_rows(encoded, info.rows, info.cols, encoding.encoding, encoding.params)) {
    throw UsageError("tensor '" + name + "': " + *problem);
  }
  const uint64_t row_bytes = info.row_bytes;
  write_tensor(std::move(info), [&](uint64_t r0, uint64_t n, uint8_t* dst) {
    std::memcpy(dst, encoded + r0 * row_bytes, n * row_bytes);
  });
}

void CompactWriter::finish(const nlohmann::json& arch, const nlohmann::json& dims, const nlohmann::json& metadata) {
  check_usable();
  file_->write_zeros(align_up(data_bytes(), kAlignment) - data_bytes());

  CompactHeader header;
  header.arch = arch;
  header.dims = dims;
  header.metadata = metadata;
  header.tensors = tensors_;
  const std::string json = build_header_json(header);
  if (json.size() > kMaxHeaderBytes) {
    throw ResourceError("compact header for '" + path_ + "' would have " + std::to_string(json.size()) +
                        " bytes, more than the format's limit of " + std::to_string(kMaxHeaderBytes));
  }

  Preamble p;
  p.data_offset = kPreambleSize;
  p.data_size = data_bytes();
  p.header_offset = p.data_offset + p.data_size;
  p.header_size = json.size();
  p.file_size = p.header_offset + p.header_size;
  p.header_xxh64 = xxh64(json.data(), json.size());

  // Run the reader's own validation on what we are about to write, so a caller's metadata
  // that breaks a reader limit (nesting, value count) fails here instead of in the runtime.
  try {
    parse_header_json(json.data(), json.size(), p);
  } catch (const InputError& e) {
    throw UsageError("compact header for '" + path_ + "' would be rejected by readers: " + e.what());
  }

  file_->write(json.data(), json.size());
  uint8_t preamble[kPreambleSize];
  encode_preamble(p, preamble);
  file_->pwrite_at(0, preamble, sizeof preamble);
  file_->commit();
  finished_ = true;
}

}  // namespace rwkvlite::format
