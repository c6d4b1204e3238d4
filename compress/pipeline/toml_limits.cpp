#include "compress/pipeline/toml_limits.h"

#include <vector>

#include "runtime/core/error.h"

namespace rwkvlite {

// A scanner that knows just enough TOML to tell keys from values and strings from the rest:
// strings (basic, literal, multi-line) and comments are skipped; a key runs from the start of a
// line (or a '{' / ',' inside an inline table) to its '='; a header from a line's first '[' to
// its ']'. Dots counted there are key segments; brackets inside values are nesting.
void check_toml_limits(const std::string& text, const std::string& source) {
  if (text.size() > kTomlMaxBytes) {
    throw UsageError(source + ": " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                     std::to_string(kTomlMaxBytes) + " bytes for a TOML file");
  }
  size_t line = 1;
  std::vector<char> open;  // '[' or '{' of the values being read
  bool in_key = true;      // at a line start or after '{' / ',' of an inline table
  bool in_header = false;
  bool line_start = true;
  int segments = 1;
  auto fail = [&](const std::string& what) {
    throw UsageError(source + ":" + std::to_string(line) + ": " + what);
  };
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      if (open.empty()) {
        in_key = true;
        in_header = false;
        line_start = true;
        segments = 1;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') continue;
    if (c == '#') {
      while (i + 1 < n && text[i + 1] != '\n') ++i;
      continue;
    }
    if (c == '"' || c == '\'') {
      const bool triple = i + 2 < n && text[i + 1] == c && text[i + 2] == c;
      i += triple ? 3 : 1;
      for (; i < n; ++i) {
        if (text[i] == '\n') ++line;
        if (c == '"' && text[i] == '\\') {
          ++i;
          if (i < n && text[i] == '\n') ++line;
          continue;
        }
        if (text[i] == c && (!triple || (i + 2 < n && text[i + 1] == c && text[i + 2] == c))) {
          if (triple) {
            i += 2;
            while (i + 1 < n && text[i + 1] == c) ++i;  // """ closes with up to two more quotes
          }
          break;
        }
      }
      line_start = false;
      continue;
    }
    if (line_start && open.empty() && c == '[') {
      in_header = true;
      in_key = false;
      segments = 1;
      line_start = false;
      continue;
    }
    line_start = false;
    if (in_header) {
      if (c == ']') in_header = false;
      if (c == '.' && ++segments > kTomlMaxKeySegments) {
        fail("a table header with more than " + std::to_string(kTomlMaxKeySegments) + " dotted segments exceeds the limit");
      }
      continue;
    }
    if (in_key) {
      if (c == '=') {
        in_key = false;
      } else if (c == '.' && ++segments > kTomlMaxKeySegments) {
        fail("a key with more than " + std::to_string(kTomlMaxKeySegments) + " dotted segments exceeds the limit");
      } else if (c == '}' && !open.empty()) {  // "{}" or a trailing brace ends the inline table
        open.pop_back();
        in_key = false;
      }
      continue;
    }
    if (c == '[' || c == '{') {
      open.push_back(c);
      if (static_cast<int>(open.size()) > kTomlMaxDepth) {
        fail("values nested more than " + std::to_string(kTomlMaxDepth) + " deep exceed the limit");
      }
      if (c == '{') {
        in_key = true;
        segments = 1;
      }
    } else if ((c == ']' || c == '}') && !open.empty()) {
      open.pop_back();
    } else if (c == ',' && !open.empty() && open.back() == '{') {
      in_key = true;
      segments = 1;
    }
  }
}

}  // namespace rwkvlite
