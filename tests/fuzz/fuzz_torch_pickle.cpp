// Fuzz target: the restricted unpickler of a .pth's data.pkl. Every tensor it accepts is then
// gathered from a zero storage of the size it claims (when small), which exercises the shape,
// stride and offset checks against the storage bounds.
#include <cstdint>
#include <vector>

#include "converters/torch_pickle.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> pickle(data, data + size);
  return rwkvlite::fuzz::run_expecting_only_rwkvlite_errors([&] {
    const auto tensors = rwkvlite::parse_torch_state_dict(pickle, "fuzz.pth");
    for (const auto& t : tensors) {
      const uint64_t bytes = rwkvlite::torch_storage_bytes(t);
      uint64_t numel = 1;  // elements gather_torch_tensor returns, capped without overflow
      for (int64_t d : t.shape) {
        if (d <= 0) { numel = 0; break; }
        if (numel > (uint64_t{1} << 20) / static_cast<uint64_t>(d)) { numel = UINT64_MAX; break; }
        numel *= static_cast<uint64_t>(d);
      }
      if (bytes > (1u << 20) || numel > (1u << 20)) continue;
      const std::vector<uint8_t> storage(bytes, 0);
      (void)rwkvlite::gather_torch_tensor(t, storage.data());
    }
  });
}
