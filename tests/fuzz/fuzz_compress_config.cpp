// Fuzz target: compress configs (TOML parsing, pass options, tensor selectors, --set-style
// resolution) through the same entry point `rwkvlite compress -c` uses, from text.
#include <string>

#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  return rwkvlite::fuzz::run_expecting_only_rwkvlite_errors([&] {
    // A base directory that does not exist: relative paths a config names resolve to nothing.
    (void)rwkvlite::parse_pipeline_config(text, "fuzz.toml", rwkvlite::builtin_passes(), {}, "/nonexistent-fuzz-dir");
  });
}
