#include "runtime/format/compact_format.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "runtime/format/codec_internal.h"

namespace rwkvlite::format {

namespace {

template <typename T>
void put(uint8_t* out, size_t at, T v) {
  std::memcpy(out + at, &v, sizeof v);  // little-endian host (codec_internal.h)
}
template <typename T>
T get(const uint8_t* in, size_t at) {
  T v;
  std::memcpy(&v, in + at, sizeof v);
  return v;
}

}  // namespace

void encode_preamble(const Preamble& p, uint8_t out[kPreambleSize]) {
  std::memset(out, 0, kPreambleSize);
  std::memcpy(out, kMagic, sizeof kMagic);
  put<uint16_t>(out, 8, p.major);
  put<uint16_t>(out, 10, p.minor);
  put<uint32_t>(out, 12, p.preamble_size);
  put<uint64_t>(out, 16, p.header_offset);
  put<uint64_t>(out, 24, p.header_size);
  put<uint64_t>(out, 32, p.data_offset);
  put<uint64_t>(out, 40, p.data_size);
  put<uint64_t>(out, 48, p.file_size);
  put<uint64_t>(out, 56, p.header_xxh64);
}

Preamble decode_preamble(const uint8_t in[kPreambleSize]) {
  Preamble p;
  p.major = get<uint16_t>(in, 8);
  p.minor = get<uint16_t>(in, 10);
  p.preamble_size = get<uint32_t>(in, 12);
  p.header_offset = get<uint64_t>(in, 16);
  p.header_size = get<uint64_t>(in, 24);
  p.data_offset = get<uint64_t>(in, 32);
  p.data_size = get<uint64_t>(in, 40);
  p.file_size = get<uint64_t>(in, 48);
  p.header_xxh64 = get<uint64_t>(in, 56);
  return p;
}

uint64_t TensorInfo::block_rows(uint64_t b) const {
  const uint64_t first = block_first_row(b);
  const uint64_t total = static_cast<uint64_t>(rows);
  return first >= total ? 0 : std::min(rows_per_block, total - first);
}

bool fold_shape(const std::vector<int64_t>& shape, int64_t* rows, int64_t* cols) {
  if (shape.size() > static_cast<size_t>(kMaxTensorRank)) return false;
  constexpr int64_t kMaxElements = int64_t{1} << 62;
  int64_t r = 1, n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t d = shape[i];
    if (d < 1) return false;
    if (__builtin_mul_overflow(n, d, &n) || n > kMaxElements) return false;
    if (i + 1 < shape.size()) r *= d;  // r <= n: cannot overflow once n did not
  }
  *rows = r;
  *cols = shape.empty() ? 1 : shape.back();
  return true;
}

uint64_t default_rows_per_block(uint64_t row_bytes) {
  if (row_bytes == 0 || row_bytes >= kDefaultChecksumBlockBytes) return 1;
  return kDefaultChecksumBlockBytes / row_bytes;
}

uint64_t xxh64(const void* data, size_t n) { return XXH64(data, n, 0); }

std::string checksums_to_hex(const std::vector<uint64_t>& sums) {
  static const char kDigits[] = "0123456789abcdef";
  std::string hex(sums.size() * 16, '0');
  for (size_t i = 0; i < sums.size(); ++i) {
    for (int d = 0; d < 16; ++d) hex[i * 16 + d] = kDigits[(sums[i] >> (60 - 4 * d)) & 15u];
  }
  return hex;
}

bool checksums_from_hex(const std::string& hex, uint64_t count, std::vector<uint64_t>* out) {
  if (count > hex.size() / 16 || hex.size() != count * 16) return false;
  out->assign(count, 0);
  for (size_t i = 0; i < hex.size(); ++i) {
    const char ch = hex[i];
    uint64_t v;
    if (ch >= '0' && ch <= '9') {
      v = static_cast<uint64_t>(ch - '0');
    } else if (ch >= 'a' && ch <= 'f') {
      v = static_cast<uint64_t>(ch - 'a' + 10);
    } else {
      return false;
    }
    (*out)[i / 16] = (*out)[i / 16] << 4 | v;
  }
  return true;
}

bool is_valid_tensor_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxTensorNameBytes) return false;
  for (unsigned char c : name) {
    if (c <= 32 || c >= 127) return false;
  }
  return true;
}

}  // namespace rwkvlite::format
