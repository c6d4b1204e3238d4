// Reader of compact files.
//
// open() validates the preamble, the header checksum and the whole header schema before any
// tensor can be used, and rejects a bad file with one InputError naming the file and the
// problem. Tensor data are read lazily, only the checksum blocks covering what is asked for,
// and every block read is verified, so the runtime can load single rows (neurons, head rows,
// embedding rows) and still never use an unverified byte. Byte counters account for every
// byte read from the file.
//
// Reads are positioned (pread) and the counters atomic: const methods may be called from
// several threads at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/tensor.h"
#include "runtime/format/compact_format.h"

namespace rwkvlite {
class InputFile;
}

namespace rwkvlite::format {

// Bytes and blocks read since open() or the last reset_read_stats().
struct ReadStats {
  uint64_t header_bytes = 0;     // preamble and JSON header (read by open() and verify())
  uint64_t data_bytes = 0;       // tensor data and padding
  uint64_t blocks_verified = 0;  // checksum blocks hashed and compared
  uint64_t reads = 0;            // positioned read calls
};

class CompactFile {
 public:
  // Opens and validates `path`; throws InputError (exit code 3) with one clear message.
  static CompactFile open(const std::string& path);

  CompactFile(CompactFile&&) noexcept;
  CompactFile& operator=(CompactFile&&) noexcept;
  ~CompactFile();

  const std::string& path() const { return path_; }
  const Preamble& preamble() const { return preamble_; }
  uint16_t major_version() const { return preamble_.major; }
  uint16_t minor_version() const { return preamble_.minor; }
  const nlohmann::json& arch() const { return arch_; }
  const nlohmann::json& dims() const { return dims_; }
  const nlohmann::json& metadata() const { return metadata_; }

  // Tensors in header order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr if absent
  const TensorInfo& tensor(const std::string& name) const;  // InputError if absent

  // The whole tensor's encoded bytes, every block verified.
  std::vector<uint8_t> read_tensor(const std::string& name) const;
  // Rows [row_begin, row_begin + row_count) into dst (row_count * row_bytes bytes). Reads exactly
  // the checksum blocks covering those rows, in one positioned read, and verifies each; throws
  // InputError naming the tensor and block on a mismatch, UsageError for rows out of range.
  void read_rows(const std::string& name, int64_t row_begin, int64_t row_count, uint8_t* dst) const;
  std::vector<uint8_t> read_rows(const std::string& name, int64_t row_begin, int64_t row_count) const;
  // The tensor decoded to FP32 in its logical shape (i32 values beyond +-2^24 round to float).
  Tensor decode_tensor(const std::string& name) const;
  // An i32 tensor's exact integers (InputError if the tensor is not i32).
  std::vector<int32_t> read_i32_tensor(const std::string& name) const;

  // Full check: the header checksum again (the file may have changed since open), every
  // checksum block of every tensor, the encoded contents (check_encoded_rows), and that all
  // padding in the data section is zero. Returns one line per problem; empty means valid.
  std::vector<std::string> verify() const;

  ReadStats read_stats() const;
  void reset_read_stats();

  // A view for the elastic runtime: the tensors in `hide` disappear from tensors() and find(),
  // and each tensor `renamed` maps answers to its new name from then on (its bytes and
  // checksums unchanged). InputError when a name is absent or a new name is already taken.
  // Not thread-safe; call before the file is shared.
  void select_tensors(const std::map<std::string, std::string>& renamed, const std::set<std::string>& hide);

 private:
  struct Counters {
    std::atomic<uint64_t> header_bytes{0}, data_bytes{0}, blocks_verified{0}, reads{0};
  };

  CompactFile() = default;
  // Reads `n` bytes at data-section offset `offset` (counted as data bytes).
  void read_data(uint64_t offset, void* dst, uint64_t n, const char* what) const;
  // Reads blocks [first, last) of t into dst and verifies them (dst holds their bytes).
  void read_blocks(const TensorInfo& t, uint64_t first, uint64_t last, uint8_t* dst) const;
  // Index of the block whose checksum does not match, or -1.
  int64_t find_bad_block(const TensorInfo& t, uint64_t first, uint64_t last, const uint8_t* bytes) const;
  void verify_tensor(const TensorInfo& t, std::vector<std::string>* problems) const;
  void verify_padding(std::vector<std::string>* problems) const;

  std::string path_;
  std::unique_ptr<InputFile> file_;
  Preamble preamble_;
  nlohmann::json arch_, dims_, metadata_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::unique_ptr<Counters> counters_;
};

}  // namespace rwkvlite::format
