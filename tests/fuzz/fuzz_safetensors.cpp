// Fuzz target: safetensors files (length prefix, JSON header, dtypes, offsets, data, model
// validation).
#include "converters/safetensors_file.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rwkvlite::fuzz::MemoryFile file(data, size);
  return rwkvlite::fuzz::run_expecting_only_rwkvlite_errors([&] { (void)rwkvlite::read_safetensors(file.path()); });
}
