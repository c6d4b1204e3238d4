// Fuzz target: rwkv.cpp model files (header, tensor records, dequantisation, transform undo,
// architecture detection and model validation).
#include "converters/rwkvcpp_file.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rwkvlite::fuzz::MemoryFile file(data, size);
  return rwkvlite::fuzz::run_expecting_only_rwkvlite_errors([&] { (void)rwkvlite::read_rwkvcpp(file.path()); });
}
