#include "tools/common/text_args.h"

#include "runtime/eval/text_source.h"

namespace rwkvlite::tools {

CLI::Option* TextArgs::add_to(CLI::App& cmd) {
  path = bundled_text_path();
  offset = kHeldOutStart;
  auto* text = cmd.add_option("--text", path, "Text file (default: the bundled tinyshakespeare.txt)");
  cmd.add_option("--offset", offset, "First byte of the text (default: 1000000, the held-out range of the bundled text)");
  cmd.add_option("--max-bytes", max_bytes, "Use at most this many bytes (0: to the end)");
  cmd.add_flag("--interleave-zeros", interleave_zeros,
               "Feed the text as c0 00 c1 00 ... (the tiny v6 model was trained this way); bits per byte are "
               "then per text byte");
  return text;
}

std::string TextArgs::read() const {
  std::string text = read_text_range(path, offset, max_bytes);
  return interleave_zeros ? interleave_zero_bytes(text) : text;
}

}  // namespace rwkvlite::tools
