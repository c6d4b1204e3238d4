#include "tools/rwkvlite/batch_inputs.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "runtime/core/error.h"
#include "runtime/core/file_io.h"

namespace rwkvlite::cli {
namespace {

bool is_pattern(const std::string& arg) { return arg.find_first_of("*?[") != std::string::npos; }

std::vector<std::string> glob_sorted(const std::string& pattern) {
  glob_t g{};
  const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0) out.assign(g.gl_pathv, g.gl_pathv + g.gl_pathc);
  ::globfree(&g);
  if (rc == GLOB_NOMATCH) throw UsageError("input pattern '" + pattern + "' matches no file");
  if (rc != 0) throw UsageError("input pattern '" + pattern + "' could not be expanded (a directory is unreadable)");
  std::sort(out.begin(), out.end());
  return out;
}

std::string trimmed(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

}  // namespace

std::vector<std::string> expand_input_patterns(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const std::string& arg : args) {
    if (!is_pattern(arg)) {
      out.push_back(arg);
      continue;
    }
    for (std::string& path : glob_sorted(arg)) out.push_back(std::move(path));
  }
  return out;
}

std::vector<std::string> read_input_list(const std::string& list_path) {
  // A list of paths is small; 16 MiB is far beyond any real one and bounds a wrong file.
  const std::vector<uint8_t> bytes = read_file_bytes(list_path, 16u << 20);
  const std::filesystem::path base = std::filesystem::path(list_path).parent_path();
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    const std::string entry = trimmed(line);
    if (entry.empty() || entry[0] == '#') continue;
    const std::filesystem::path p(entry);
    out.push_back(p.is_absolute() || base.empty() ? entry : (base / p).string());
  }
  return out;
}

std::string input_stem(const std::string& input) {
  const std::filesystem::path p(input);
  if (!p.has_filename()) throw UsageError("input '" + input + "' has no file name to name its output after");
  return p.stem().string();
}

}  // namespace rwkvlite::cli
