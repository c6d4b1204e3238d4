// Fuzz target: the compact format. Opens the file (preamble and JSON header), verifies every
// checksum and padding byte, then reads the first and last row of every tensor and decodes the
// small ones, as the runtime's row reads do.
#include "runtime/format/compact_reader.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rwkvlite::fuzz::MemoryFile file(data, size);
  return rwkvlite::fuzz::run_expecting_only_rwkvlite_errors([&] {
    const auto compact = rwkvlite::format::CompactFile::open(file.path());
    (void)compact.verify();
    for (const auto& t : compact.tensors()) {
      if (t.rows < 1) continue;
      (void)compact.read_rows(t.name, 0, 1);
      (void)compact.read_rows(t.name, t.rows - 1, 1);
      // A header may declare any size the file backs; decode only what fits a fuzz run.
      if (t.nbytes <= (1u << 20) && static_cast<uint64_t>(t.rows) * static_cast<uint64_t>(t.cols) <= (1u << 20)) {
        (void)compact.decode_tensor(t.name);
      }
    }
  });
}
