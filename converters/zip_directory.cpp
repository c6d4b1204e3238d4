#include "converters/zip_directory.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <vector>

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t u32(const uint8_t* p) { return static_cast<uint32_t>(u16(p)) | static_cast<uint32_t>(u16(p + 2)) << 16; }
uint64_t u64(const uint8_t* p) { return static_cast<uint64_t>(u32(p)) | static_cast<uint64_t>(u32(p + 4)) << 32; }

constexpr uint32_t kEndRecord = 0x06054b50, kZip64EndRecord = 0x06064b50, kZip64Locator = 0x07064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;

bool unsafe_name(const std::string& name) {
  if (name.empty() || name[0] == '/' || name[0] == '\\' || name.find('\0') != std::string::npos) return true;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find_first_of("/\\", start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

uint32_t zip_crc32(const uint8_t* data, uint64_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (uint64_t i = 0; i < n; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::map<std::string, ZipEntry> read_zip_directory(const InputFile& file, const std::string& where) {
  auto bad = [&](const std::string& what) -> InputError { return InputError(where + ": " + what); };
  // The end record (22 bytes plus a comment of up to 65,535) closes the archive.
  const uint64_t tail_size = std::min<uint64_t>(file.size(), 22 + 65535);
  std::vector<uint8_t> tail(tail_size);
  if (tail_size) file.read_at(file.size() - tail_size, tail.data(), tail_size, "the zip end record");
  int64_t end_at = -1;
  for (int64_t i = static_cast<int64_t>(tail_size) - 22; i >= 0; --i) {
    if (u32(&tail[i]) == kEndRecord) {
      end_at = i;
      break;
    }
  }
  if (end_at < 0) throw bad("the zip archive has no end record (truncated?)");
  const uint8_t* e = &tail[end_at];
  uint64_t entries = u16(e + 10), dir_size = u32(e + 12), dir_offset = u32(e + 16);
  const uint64_t end_offset = file.size() - tail_size + end_at;
  if ((entries == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) && end_offset >= 20) {
    uint8_t loc[20];
    file.read_at(end_offset - 20, loc, 20, "the zip64 end locator");
    if (u32(loc) == kZip64Locator) {
      const uint64_t z64_at = u64(loc + 8);
      uint8_t z[56];
      if (z64_at > file.size() || file.size() - z64_at < 56) throw bad("the zip64 end record lies past the end of the file");
      file.read_at(z64_at, z, 56, "the zip64 end record");
      if (u32(z) != kZip64EndRecord) throw bad("the zip64 end record is damaged");
      entries = u64(z + 32);
      dir_size = u64(z + 40);
      dir_offset = u64(z + 48);
    }
  }
  if (dir_offset > file.size() || dir_size > file.size() - dir_offset) {
    throw bad("the zip directory (" + std::to_string(dir_size) + " bytes at offset " + std::to_string(dir_offset) +
              ") lies past the end of the file");
  }
  std::vector<uint8_t> dir(dir_size);
  if (dir_size) file.read_at(dir_offset, dir.data(), dir_size, "the zip directory");
  std::map<std::string, ZipEntry> out;
  std::set<std::string> names;
  uint64_t at = 0;
  for (uint64_t k = 0; k < entries; ++k) {
    if (dir_size - at < 46 || u32(&dir[at]) != kDirectoryEntry) throw bad("the zip directory is truncated or damaged");
    const uint8_t* d = &dir[at];
    ZipEntry z;
    z.crc32 = u32(d + 16);
    z.compressed_size = u32(d + 20);
    z.uncompressed_size = u32(d + 24);
    const uint64_t name_len = u16(d + 28), extra_len = u16(d + 30), comment_len = u16(d + 32);
    if (dir_size - at - 46 < name_len + extra_len + comment_len) throw bad("the zip directory is truncated");
    const std::string name(reinterpret_cast<const char*>(d + 46), name_len);
    // Zip64 sizes, in the order of the 32-bit fields that are saturated.
    const uint8_t* x = d + 46 + name_len;
    for (uint64_t i = 0; i + 4 <= extra_len;) {
      const uint16_t id = u16(x + i), len = u16(x + i + 2);
      if (i + 4 + len > extra_len) break;
      if (id == 0x0001) {
        const uint8_t* f = x + i + 4;
        uint64_t left = len;
        if (z.uncompressed_size == 0xFFFFFFFF && left >= 8) z.uncompressed_size = u64(f), f += 8, left -= 8;
        if (z.compressed_size == 0xFFFFFFFF && left >= 8) z.compressed_size = u64(f);
      }
      i += 4 + len;
    }
    at += 46 + name_len + extra_len + comment_len;
    if (unsafe_name(name)) throw bad("the zip archive has an entry named '" + name + "' (an absolute or '..' path)");
    if (!names.insert(name).second) throw bad("the zip archive has two entries named '" + name + "'");
    const size_t slash = name.find('/');
    out.emplace(slash == std::string::npos ? name : name.substr(slash + 1), z);
  }
  return out;
}

}  // namespace rwkvlite
