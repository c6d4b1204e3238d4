// Fuzz target: rwkvlite's own reading of a .pth's zip central directory (end record, zip64
// records, entry table, names), which judges every record's size, name and CRC-32 before
// LibTorch's zip reader is given the archive. The CRC-32 routine runs over the input too.
#include <cstddef>
#include <cstdint>

#include "converters/zip_directory.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rwkvlite::fuzz::MemoryFile file(data, size);
  return rwkvlite::fuzz::run_expecting_only_rwkvlite_errors([&] {
    const rwkvlite::InputFile in(file.path());
    (void)rwkvlite::read_zip_directory(in, "fuzz.pth");
    (void)rwkvlite::zip_crc32(data, size);
  });
}
