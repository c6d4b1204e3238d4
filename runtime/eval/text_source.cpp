#include "runtime/eval/text_source.h"

#include <cstdlib>

#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/core/version.h"

namespace rwkvlite {

std::string read_text_range(const std::string& path, uint64_t offset, uint64_t max_bytes) {
  InputFile f(path);
  if (offset >= f.size()) {
    throw InputError("'" + path + "' has " + std::to_string(f.size()) + " bytes, nothing at offset " +
                     std::to_string(offset));
  }
  uint64_t n = f.size() - offset;
  if (max_bytes > 0 && max_bytes < n) n = max_bytes;
  std::string out(n, '\0');
  f.read_at(offset, out.data(), n, "the text");
  return out;
}

std::string interleave_zero_bytes(const std::string& text) {
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) {
    out.push_back(c);
    out.push_back('\0');
  }
  return out;
}

std::string data_path(const std::string& relative) {
  const char* env = std::getenv("RWKVLITE_DATA_DIR");
  const std::string dir = (env && *env) ? env : RWKVLITE_BUILD_DATA_DIR;
  return dir + "/" + relative;
}

std::string bundled_text_path() { return data_path("data/tinyshakespeare.txt"); }

}  // namespace rwkvlite
