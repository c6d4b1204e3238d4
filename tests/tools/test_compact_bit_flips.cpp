// Integrity of a real compressed file: ~200 single-bit flips at seeded random positions of a
// compact file made by `rwkvlite compress`, each caught by `rwkvlite verify` (the same
// CompactFile::verify in process here) and by the runtime loading the file. The one
// exception the runtime is allowed: a flip in alignment padding, which no weight depends on,
// so the model must then give bit-identical logits. (tests/runtime/test_format.cpp flips every
// byte of a small hand-built file; this is the end-to-end case on what compress writes.)
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>

#include "runtime/core/error.h"
#include "runtime/format/compact_reader.h"
#include "runtime/store/compact_model.h"
#include "tests/support/cli_runner.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

void flip_bit(const std::string& path, uint64_t pos, int bit) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(pos));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ (1 << bit));
  f.seekp(static_cast<std::streamoff>(pos));
  f.write(&c, 1);
}

// Logits after a short prompt; throws what loading or reading throws.
std::vector<float> logits_of(const std::string& path) {
  CompactEngine e = load_compact_engine(path, 1);
  State s = e.engine->new_state();
  const std::vector<int32_t> prompt = {1, 7, 42, 3};
  std::vector<float> logits(static_cast<size_t>(e.engine->vocab_size()));
  e.engine->eval_sequence(prompt.data(), prompt.size(), s, logits.data());
  return logits;
}

}  // namespace

TEST_CASE("Every bit flip in a compressed file is caught by verify and by the runtime (or is padding)",
          "[tools][integrity]") {
  const std::string model = tiny_model_path("5v2-730K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(model);
  const std::string dir = case_dir("bit_flips");
  const std::string clean = dir + "/clean.rwkvlite", path = dir + "/flipped.rwkvlite";
  const Result made = run("rwkvlite", "compress '" + model + "' -c configs/int8.toml --threads 1 -o '" + clean + "'");
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  const std::string original = read_all(clean);
  const std::vector<float> reference = logits_of(clean);
  const auto file = format::CompactFile::open(clean);
  REQUIRE(file.verify().empty());
  const format::Preamble p = file.preamble();
  auto in_padding = [&](uint64_t pos) {
    if (pos < p.data_offset || pos >= p.data_offset + p.data_size) return false;
    const uint64_t d = pos - p.data_offset;
    for (const auto& t : file.tensors())
      if (d >= t.offset && d < t.offset + t.nbytes) return false;
    return true;
  };

  std::mt19937_64 rng(20261202);
  std::uniform_int_distribution<uint64_t> position(0, original.size() - 1);
  int flips = 0, by_open = 0, padding = 0;
  for (; flips < 200; ++flips) {
    const uint64_t pos = position(rng);
    const int bit = static_cast<int>(rng() % 8);
    CAPTURE(flips, pos, bit);
    write_file(path, original);
    flip_bit(path, pos, bit);

    bool verify_caught = false;
    try {
      verify_caught = !format::CompactFile::open(path).verify().empty();
    } catch (const InputError&) {
      verify_caught = true;
      ++by_open;
    }
    REQUIRE(verify_caught);

    if (in_padding(pos)) {
      ++padding;
      REQUIRE(logits_of(path) == reference);
    } else {
      REQUIRE_THROWS_AS(logits_of(path), InputError);
    }
  }
  std::cout << "bit flips in a " << original.size() << "-byte compressed file: " << flips << " (" << by_open
            << " refused at open, " << padding << " in padding); every one caught by verify, every non-padding one "
            << "by the runtime\n";
  CHECK(flips == 200);
}
