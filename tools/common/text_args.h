// The text options of every command that evaluates on text: --text FILE from --offset for
// --max-bytes (0 = to the end), optionally interleaved with 0x00 for the tiny v6 model.
//
// Without --text the bundled tinyshakespeare.txt is read from its held-out range (byte
// 1,000,000 on); a user's own --text file is read from byte 0. --offset overrides either.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace rwkvlite::tools {

struct TextArgs {
  std::string path;                // empty: the bundled tinyshakespeare.txt
  std::optional<uint64_t> offset;  // unset: 0 for --text, the held-out start for the bundled text
  uint64_t max_bytes = 0;
  bool interleave_zeros = false;

  // Registers --text, --offset, --max-bytes, --interleave-zeros; returns --text (for excludes()).
  CLI::Option* add_to(CLI::App& cmd);
  // The file read: --text, or the bundled text's path.
  std::string resolved_path() const;
  // The first byte read (see the header comment).
  uint64_t start() const;
  // The bytes to feed: the range, interleaved when asked.
  std::string read() const;
  // Fed bytes per text byte (2 with --interleave-zeros): bits per byte are reported per text byte.
  double fed_bytes_per_text_byte() const { return interleave_zeros ? 2.0 : 1.0; }
};

}  // namespace rwkvlite::tools
