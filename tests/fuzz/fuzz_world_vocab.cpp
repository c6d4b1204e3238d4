// Fuzz target: World tokenizer vocabulary files. A vocabulary that loads then encodes and
// decodes its own bytes, which must round-trip (greedy longest match covers every byte).
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rwkvlite::fuzz::MemoryFile file(data, size);
  return rwkvlite::fuzz::run_expecting_only_rwkvlite_errors([&] {
    const auto tokenizer = rwkvlite::load_world_tokenizer(file.path());
    const std::string_view text(reinterpret_cast<const char*>(data), size < 256 ? size : 256);
    if (tokenizer->decode(tokenizer->encode(text)) != text) std::abort();
  });
}
