// The central directory of a zip archive, read by rwkvlite itself so that a .pth checkpoint's
// records are judged before LibTorch inflates them: their uncompressed sizes (a small file can
// declare a record that inflates to gigabytes), their names (no absolute or ".." paths) and
// their CRC-32s (LibTorch reads a record whose checksum does not match without complaint).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "runtime/core/file_io.h"

namespace rwkvlite {

struct ZipEntry {
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint32_t crc32 = 0;
};

// Entries by name with the archive's top folder removed ("model/data.pkl" -> "data.pkl", as
// LibTorch names records). Throws InputError, prefixed with `where`, for a missing or
// truncated directory, an entry name that is absolute or contains "..", or a name given twice.
std::map<std::string, ZipEntry> read_zip_directory(const InputFile& file, const std::string& where);

// CRC-32 (the zip polynomial, 0xEDB88320 reflected) of n bytes.
uint32_t zip_crc32(const uint8_t* data, uint64_t n);

}  // namespace rwkvlite
