#include "tools/common/text_args.h"

#include "runtime/eval/text_source.h"

namespace rwkvlite::tools {

CLI::Option* TextArgs::add_to(CLI::App& cmd) {
  auto* text = cmd.add_option("--text", path, "Text file, read from byte 0 (default: the bundled tinyshakespeare.txt, "
                                              "read from its held-out range at byte 1000000)");
  cmd.add_option("--offset", offset, "First byte of the text (default: 0 for --text, 1000000 for the bundled text)");
  cmd.add_option("--max-bytes", max_bytes, "Use at most this many bytes (0: to the end)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_flag("--interleave-zeros", interleave_zeros,
               "Feed the text as c0 00 c1 00 ... (the tiny v6 model was trained this way); bits per byte are "
               "then per text byte");
  return text;
}

std::string TextArgs::resolved_path() const { return path.empty() ? bundled_text_path() : path; }

uint64_t TextArgs::start() const {
  if (offset) return *offset;
  return path.empty() ? kHeldOutStart : 0;
}

std::string TextArgs::read() const {
  std::string text = read_text_range(resolved_path(), start(), max_bytes);
  return interleave_zeros ? interleave_zero_bytes(text) : text;
}

}  // namespace rwkvlite::tools
