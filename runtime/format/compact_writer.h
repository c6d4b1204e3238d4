// Streaming writer of compact files.
//
// Tensors are encoded and written one at a time (bounded memory: one chunk of encoded rows
// at a time), the JSON header is written after the data, and the preamble is patched last.
// The output goes through AtomicFile, so `path` only ever holds a complete, valid file: if
// finish() is not reached (exception, crash), no output appears.
//
// Output is a pure function of the calls made: identical inputs give byte-identical files
// (no timestamps; JSON keys sorted; deterministic encoders).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/format/compact_format.h"

namespace rwkvlite {
class AtomicFile;
}

namespace rwkvlite::format {

// rows_per_block arguments: one checksum per row for tensors the runtime reads row by row
// (channel-mix neurons, head rows, embedding rows), so it verifies exactly what it reads.
constexpr uint64_t kChecksumEveryRow = 1;
// ... or 0 for bulk-read tensors: blocks of about kDefaultChecksumBlockBytes.
constexpr uint64_t kChecksumDefaultBlocks = 0;

class CompactWriter {
 public:
  explicit CompactWriter(const std::string& path);
  ~CompactWriter();
  CompactWriter(const CompactWriter&) = delete;
  CompactWriter& operator=(const CompactWriter&) = delete;

  // Encodes `data` (numel(shape) FP32 values, row-major) and appends it. rows_per_block as above;
  // values larger than the row count are clamped to it. Throws UsageError for a bad or
  // duplicate name, a bad shape or encoding, or values the encoding cannot hold, and InputError
  // for non-finite values. If it throws after writing began, the writer is unusable (later
  // calls throw) and no output file is produced.
  void add_tensor(const std::string& name, const EncodingSpec& encoding, const std::vector<int64_t>& shape,
                  const float* data, uint64_t rows_per_block);
  void add_tensor(const std::string& name, Encoding encoding, const EncodingParams& params,
                  const std::vector<int64_t>& shape, const float* data, uint64_t rows_per_block) {
    add_tensor(name, EncodingSpec{encoding, params}, shape, data, rows_per_block);
  }
  // Appends rows already encoded with `encoding` (e.g. i32 tables from encode_rows_i32, or u8
  // bytes); nbytes must be rows * encoded_row_bytes. The rows are checked with
  // check_encoded_rows, so the writer never produces a file verify() would reject.
  void add_tensor(const std::string& name, const EncodingSpec& encoding, const std::vector<int64_t>& shape,
                  const uint8_t* encoded, uint64_t nbytes, uint64_t rows_per_block);

  // Writes the header (arch, dims and metadata: JSON objects, opaque to the format), patches
  // the preamble and renames the file into place. Throws ResourceError if the header would
  // exceed kMaxHeaderBytes, UsageError if it would break another reader limit.
  void finish(const nlohmann::json& arch, const nlohmann::json& dims, const nlohmann::json& metadata);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  uint64_t data_bytes() const;  // data section bytes written so far (padding included)

 private:
  // Validates name, shape and encoding; fills everything of a TensorInfo but offset and checksums.
  TensorInfo describe(const std::string& name, const EncodingSpec& encoding, const std::vector<int64_t>& shape,
                      uint64_t rows_per_block) const;
  // Pads to alignment and writes `rows` encoded rows produced chunk by chunk by `encode_chunk`.
  template <typename EncodeChunk>
  void write_tensor(TensorInfo info, EncodeChunk encode_chunk);
  void check_usable() const;

  std::string path_;
  std::unique_ptr<AtomicFile> file_;
  std::vector<TensorInfo> tensors_;
  std::unordered_set<std::string> names_;
  bool failed_ = false;
  bool finished_ = false;
};

}  // namespace rwkvlite::format
