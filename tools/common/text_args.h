// The text options of every command that evaluates on text: --text FILE from --offset for
// --max-bytes (0 = to the end), optionally interleaved with 0x00 for the tiny v6 model.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace rwkvlite::tools {

struct TextArgs {
  std::string path;  // default: the bundled tinyshakespeare.txt
  uint64_t offset = 0;
  uint64_t max_bytes = 0;
  bool interleave_zeros = false;

  // Defaults to the held-out range of the bundled text; returns --text (for excludes()).
  CLI::Option* add_to(CLI::App& cmd);
  // The bytes to feed: the range, interleaved when asked.
  std::string read() const;
  // Fed bytes per text byte (2 with --interleave-zeros): bits per byte are reported per text byte.
  double fed_bytes_per_text_byte() const { return interleave_zeros ? 2.0 : 1.0; }
};

}  // namespace rwkvlite::tools
