// Fuzz target: sweep files (`rwkvlite sweep`): TOML, [sweep] products, [[run]] and
// [[baseline]] tables. Relative paths resolve beside /proc/self/fd, where no config or model
// exists, so the reader's own validation is what gets exercised.
#include "compress/passes/builtin_passes.h"
#include "tests/fuzz/fuzz_input.h"
#include "tools/rwkvlite/sweep_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rwkvlite::fuzz::MemoryFile file(data, size);
  return rwkvlite::fuzz::run_expecting_only_rwkvlite_errors(
      [&] { (void)rwkvlite::cli::load_sweep(file.path(), rwkvlite::builtin_passes()); });
}
