#include "runtime/format/compact_reader.h"

#include <algorithm>
#include <cstring>

#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/format/codec.h"
#include "runtime/format/compact_header.h"

namespace rwkvlite::format {

namespace {

// verify() reads tensors in pieces of whole checksum blocks of about this size.
constexpr uint64_t kVerifyChunkBytes = uint64_t{16} << 20;

std::string hex64(uint64_t v) { return checksums_to_hex({v}); }

std::string rows_text(uint64_t first, uint64_t count) {
  return count == 1 ? "row " + std::to_string(first)
                    : "rows " + std::to_string(first) + ".." + std::to_string(first + count - 1);
}

// Checks every preamble field against the others and the real file size, in an order that
// names the most specific problem first (wrong kind of file, then version, then truncation).
void check_preamble(const Preamble& p, uint64_t actual_size, const std::string& path) {
  auto bad = [&](const std::string& what) { throw InputError("'" + path + "': " + what); };
  if (p.major != kFormatMajor) {
    bad("compact format version " + std::to_string(p.major) + "." + std::to_string(p.minor) +
        " is not supported; this rwkvlite reads major version " + std::to_string(kFormatMajor) +
        (p.major > kFormatMajor ? " (the file was written by a newer rwkvlite)" : ""));
  }
  if (p.preamble_size != kPreambleSize) {
    bad("inconsistent preamble: preamble size " + std::to_string(p.preamble_size) + ", expected " +
        std::to_string(kPreambleSize));
  }
  if (p.file_size > actual_size) {
    throw InputError("'" + path + "' is truncated: its preamble records " + std::to_string(p.file_size) +
                     " bytes but the file has " + std::to_string(actual_size));
  }
  if (p.file_size < actual_size) {
    throw InputError("'" + path + "' has " + std::to_string(actual_size) + " bytes, more than the " +
                     std::to_string(p.file_size) + " its preamble records (data appended or preamble corrupted)");
  }
  if (p.header_size > kMaxHeaderBytes) {
    bad("header size " + std::to_string(p.header_size) + " exceeds the format's limit of " +
        std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if (p.header_offset > actual_size || p.header_size > actual_size - p.header_offset) {
    bad("header (bytes " + std::to_string(p.header_offset) + " + " + std::to_string(p.header_size) +
        ") extends beyond the end of the file (" + std::to_string(actual_size) + " bytes)");
  }
  if (p.header_size == 0) bad("inconsistent preamble: the header is empty");
  if (p.data_offset != kPreambleSize) {
    bad("inconsistent preamble: data offset " + std::to_string(p.data_offset) + ", expected " +
        std::to_string(kPreambleSize));
  }
  if (p.data_size % kAlignment != 0) {
    bad("inconsistent preamble: data size " + std::to_string(p.data_size) + " is not a multiple of " +
        std::to_string(kAlignment));
  }
  // header_offset <= actual_size was checked, so this comparison cannot overflow.
  if (p.data_size > p.header_offset || p.header_offset - p.data_size != p.data_offset) {
    bad("inconsistent preamble: header offset " + std::to_string(p.header_offset) +
        " does not directly follow the data section (offset " + std::to_string(p.data_offset) + ", size " +
        std::to_string(p.data_size) + ")");
  }
  if (p.header_offset + p.header_size != p.file_size) {
    bad("inconsistent preamble: the header ends at " + std::to_string(p.header_offset + p.header_size) +
        " but the file has " + std::to_string(p.file_size) + " bytes");
  }
}

}  // namespace

CompactFile::CompactFile(CompactFile&&) noexcept = default;
CompactFile& CompactFile::operator=(CompactFile&&) noexcept = default;
CompactFile::~CompactFile() = default;

CompactFile CompactFile::open(const std::string& path) {
  CompactFile cf;
  cf.path_ = path;
  cf.file_ = std::make_unique<InputFile>(path);
  cf.counters_ = std::make_unique<Counters>();
  const uint64_t size = cf.file_->size();

  uint8_t raw[kPreambleSize] = {};
  const uint64_t first = std::min<uint64_t>(size, kPreambleSize);
  if (first) cf.file_->read_at(0, raw, first, "the preamble");
  cf.counters_->header_bytes += first;
  cf.counters_->reads += first ? 1 : 0;
  if (size < sizeof kMagic || std::memcmp(raw, kMagic, sizeof kMagic) != 0) {
    throw InputError("'" + path + "' is not an rwkvlite compact file: it is " + describe_file_contents(path));
  }
  if (size < kPreambleSize) {
    throw InputError("'" + path + "' is truncated: " + std::to_string(size) + " bytes, less than the " +
                     std::to_string(kPreambleSize) + "-byte preamble");
  }
  cf.preamble_ = decode_preamble(raw);
  check_preamble(cf.preamble_, size, path);

  // header_size <= kMaxHeaderBytes and within the file: safe to allocate.
  std::string header(cf.preamble_.header_size, '\0');
  cf.file_->read_at(cf.preamble_.header_offset, header.data(), header.size(), "the header");
  cf.counters_->header_bytes += header.size();
  cf.counters_->reads += 1;
  const uint64_t actual = xxh64(header.data(), header.size());
  if (actual != cf.preamble_.header_xxh64) {
    throw InputError("'" + path + "': header checksum mismatch (recorded " + hex64(cf.preamble_.header_xxh64) +
                     ", computed " + hex64(actual) + "): the file is corrupted");
  }
  CompactHeader parsed;
  try {
    parsed = parse_header_json(header.data(), header.size(), cf.preamble_);
  } catch (const InputError& e) {
    throw InputError("'" + path + "': " + e.what());
  }
  cf.arch_ = std::move(parsed.arch);
  cf.dims_ = std::move(parsed.dims);
  cf.metadata_ = std::move(parsed.metadata);
  cf.tensors_ = std::move(parsed.tensors);
  for (size_t i = 0; i < cf.tensors_.size(); ++i) cf.index_.emplace(cf.tensors_[i].name, i);
  return cf;
}

void CompactFile::select_tensors(const std::map<std::string, std::string>& renamed, const std::set<std::string>& hide) {
  for (const auto& [from, to] : renamed) {
    if (!find(from)) throw InputError("'" + path_ + "': has no tensor '" + from + "' to select");
  }
  for (const std::string& name : hide) {
    if (!find(name)) throw InputError("'" + path_ + "': has no tensor '" + name + "' to hide");
  }
  std::vector<TensorInfo> kept;
  std::unordered_map<std::string, size_t> index;
  for (const TensorInfo& t : tensors_) {  // copies: the file is unchanged if this throws
    if (hide.contains(t.name)) continue;
    kept.push_back(t);
    if (const auto it = renamed.find(t.name); it != renamed.end()) kept.back().name = it->second;
    if (!index.emplace(kept.back().name, kept.size() - 1).second)
      throw InputError("'" + path_ + "': selecting a stored form as '" + kept.back().name +
                       "' clashes with a tensor of that name");
  }
  tensors_ = std::move(kept);
  index_ = std::move(index);
}

const TensorInfo* CompactFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& CompactFile::tensor(const std::string& name) const {
  if (const TensorInfo* t = find(name)) return *t;
  throw InputError("'" + path_ + "' has no tensor '" + name + "'");
}

void CompactFile::read_data(uint64_t offset, void* dst, uint64_t n, const char* what) const {
  // Offsets were validated against the data section at open, so this cannot overflow.
  file_->read_at(preamble_.data_offset + offset, dst, n, what);
  counters_->data_bytes += n;
  counters_->reads += 1;
}

int64_t CompactFile::find_bad_block(const TensorInfo& t, uint64_t first, uint64_t last, const uint8_t* bytes) const {
  const uint8_t* p = bytes;
  for (uint64_t b = first; b < last; ++b) {
    const uint64_t n = t.block_rows(b) * t.row_bytes;
    counters_->blocks_verified += 1;
    if (xxh64(p, n) != t.block_xxh64[b]) return static_cast<int64_t>(b);
    p += n;
  }
  return -1;
}

void CompactFile::read_blocks(const TensorInfo& t, uint64_t first, uint64_t last, uint8_t* dst) const {
  const uint64_t begin_row = t.block_first_row(first);
  const uint64_t end_row = std::min<uint64_t>(t.block_first_row(last), static_cast<uint64_t>(t.rows));
  read_data(t.offset + begin_row * t.row_bytes, dst, (end_row - begin_row) * t.row_bytes, "tensor data");
  const int64_t bad = find_bad_block(t, first, last, dst);
  if (bad >= 0) {
    const auto b = static_cast<uint64_t>(bad);
    throw InputError("'" + path_ + "': tensor '" + t.name + "' checksum block " + std::to_string(b) + " (" +
                     rows_text(t.block_first_row(b), t.block_rows(b)) + ") does not match its checksum: the file is corrupted");
  }
}

std::vector<uint8_t> CompactFile::read_tensor(const std::string& name) const {
  const TensorInfo& t = tensor(name);
  std::vector<uint8_t> out(t.nbytes);
  read_blocks(t, 0, t.block_count(), out.data());
  return out;
}

void CompactFile::read_rows(const std::string& name, int64_t row_begin, int64_t row_count, uint8_t* dst) const {
  const TensorInfo& t = tensor(name);
  if (row_begin < 0 || row_count < 0 || row_begin > t.rows || row_count > t.rows - row_begin) {
    throw UsageError("rows " + std::to_string(row_begin) + " + " + std::to_string(row_count) + " are outside tensor '" +
                     name + "' of " + std::to_string(t.rows) + " rows");
  }
  if (row_count == 0) return;
  const auto begin = static_cast<uint64_t>(row_begin), end = begin + static_cast<uint64_t>(row_count);
  const uint64_t first = begin / t.rows_per_block, last = (end - 1) / t.rows_per_block + 1;
  const uint64_t cover_begin = t.block_first_row(first);
  const uint64_t cover_end = std::min<uint64_t>(t.block_first_row(last), static_cast<uint64_t>(t.rows));
  if (cover_begin == begin && cover_end == end) {
    read_blocks(t, first, last, dst);  // block-aligned request (always so with one row per block)
    return;
  }
  std::vector<uint8_t> covering((cover_end - cover_begin) * t.row_bytes);
  read_blocks(t, first, last, covering.data());
  std::memcpy(dst, covering.data() + (begin - cover_begin) * t.row_bytes, (end - begin) * t.row_bytes);
}

std::vector<uint8_t> CompactFile::read_rows(const std::string& name, int64_t row_begin, int64_t row_count) const {
  const TensorInfo& t = tensor(name);
  std::vector<uint8_t> out(static_cast<size_t>(std::max<int64_t>(row_count, 0)) * t.row_bytes);
  read_rows(name, row_begin, row_count, out.data());
  return out;
}

Tensor CompactFile::decode_tensor(const std::string& name) const {
  const TensorInfo& t = tensor(name);
  const std::vector<uint8_t> bytes = read_tensor(name);
  Tensor out(t.shape);
  for (int64_t r = 0; r < t.rows; ++r) {
    decode_row(bytes.data() + static_cast<size_t>(r) * t.row_bytes, t.cols, t.encoding, out.data.data() + r * t.cols);
  }
  return out;
}

std::vector<int32_t> CompactFile::read_i32_tensor(const std::string& name) const {
  const TensorInfo& t = tensor(name);
  if (t.encoding.encoding != Encoding::I32) {
    throw InputError("'" + path_ + "': tensor '" + name + "' is " + encoding_name(t.encoding) + ", not an i32 table");
  }
  const std::vector<uint8_t> bytes = read_tensor(name);
  std::vector<int32_t> out(static_cast<size_t>(t.rows * t.cols));
  for (int64_t r = 0; r < t.rows; ++r) {
    decode_row_i32(bytes.data() + static_cast<size_t>(r) * t.row_bytes, t.cols, out.data() + r * t.cols);
  }
  return out;
}

void CompactFile::verify_tensor(const TensorInfo& t, std::vector<std::string>* problems) const {
  const uint64_t block_bytes = t.rows_per_block * t.row_bytes;
  const uint64_t blocks_per_chunk = std::max<uint64_t>(1, kVerifyChunkBytes / block_bytes);
  std::vector<uint8_t> chunk;
  bool content_reported = false;
  for (uint64_t b0 = 0; b0 < t.block_count(); b0 += blocks_per_chunk) {
    const uint64_t b1 = std::min(t.block_count(), b0 + blocks_per_chunk);
    const uint64_t r0 = t.block_first_row(b0);
    const uint64_t rows = std::min<uint64_t>(t.block_first_row(b1), static_cast<uint64_t>(t.rows)) - r0;
    chunk.resize(rows * t.row_bytes);
    read_data(t.offset + r0 * t.row_bytes, chunk.data(), chunk.size(), "tensor data");
    const uint8_t* p = chunk.data();
    for (uint64_t b = b0; b < b1; ++b) {
      const uint64_t n = t.block_rows(b) * t.row_bytes;
      counters_->blocks_verified += 1;
      if (xxh64(p, n) != t.block_xxh64[b]) {
        problems->push_back("tensor '" + t.name + "': checksum block " + std::to_string(b) + " (" +
                            rows_text(t.block_first_row(b), t.block_rows(b)) + ") does not match its checksum");
      }
      p += n;
    }
    // One content report per tensor is enough to flag it; checksum problems are all listed.
    if (!content_reported) {
      if (auto problem = check_encoded_rows(chunk.data(), static_cast<int64_t>(rows), t.cols, t.encoding.encoding,
                                            t.encoding.params)) {
        problems->push_back("tensor '" + t.name + "': " + *problem + " (counting from row " + std::to_string(r0) + ")");
        content_reported = true;
      }
    }
  }
}

void CompactFile::verify_padding(std::vector<std::string>* problems) const {
  // The header guarantees the tensors tile the data section, so the padding is exactly the
  // gap from each tensor's end to the next aligned offset.
  std::vector<uint8_t> pad(kAlignment);
  for (const TensorInfo& t : tensors_) {
    const uint64_t end = t.offset + t.nbytes;
    const uint64_t n = align_up(end, kAlignment) - end;
    if (n == 0) continue;
    read_data(end, pad.data(), n, "padding");
    if (std::any_of(pad.begin(), pad.begin() + static_cast<std::ptrdiff_t>(n), [](uint8_t b) { return b != 0; })) {
      problems->push_back("the padding after tensor '" + t.name + "' (data bytes " + std::to_string(end) + ".." +
                          std::to_string(end + n) + ") is not zero");
    }
  }
}

std::vector<std::string> CompactFile::verify() const {
  std::vector<std::string> problems;
  try {
    const uint64_t size_now = file_size_or_throw(path_);
    if (size_now != preamble_.file_size) {
      problems.push_back("the file now has " + std::to_string(size_now) + " bytes; its preamble records " +
                         std::to_string(preamble_.file_size));
      return problems;
    }
    uint8_t raw[kPreambleSize];
    file_->read_at(0, raw, kPreambleSize, "the preamble");
    std::string header(preamble_.header_size, '\0');
    file_->read_at(preamble_.header_offset, header.data(), header.size(), "the header");
    counters_->header_bytes += kPreambleSize + header.size();
    counters_->reads += 2;
    uint8_t expected[kPreambleSize];
    encode_preamble(preamble_, expected);
    if (std::memcmp(raw, expected, kPreambleSize) != 0) problems.push_back("the preamble changed since the file was opened");
    if (xxh64(header.data(), header.size()) != preamble_.header_xxh64) problems.push_back("header checksum mismatch");
    for (const TensorInfo& t : tensors_) verify_tensor(t, &problems);
    verify_padding(&problems);
  } catch (const Error& e) {
    problems.push_back(e.what());  // the file shrank or became unreadable while verifying
  }
  return problems;
}

ReadStats CompactFile::read_stats() const {
  ReadStats s;
  s.header_bytes = counters_->header_bytes;
  s.data_bytes = counters_->data_bytes;
  s.blocks_verified = counters_->blocks_verified;
  s.reads = counters_->reads;
  return s;
}

void CompactFile::reset_read_stats() {
  counters_->header_bytes = 0;
  counters_->data_bytes = 0;
  counters_->blocks_verified = 0;
  counters_->reads = 0;
}

}  // namespace rwkvlite::format
