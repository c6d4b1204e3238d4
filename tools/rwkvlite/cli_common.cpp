#include "tools/rwkvlite/cli_common.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "runtime/core/error.h"

namespace rwkvlite::cli {

std::string parse_hex(const std::string& hex) {
  auto digit = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw UsageError("--prompt-hex: '" + std::string(1, c) + "' is not a hex digit");
  };
  if (hex.size() % 2) throw UsageError("--prompt-hex needs an even number of hex digits");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) out.push_back(static_cast<char>(digit(hex[i]) * 16 + digit(hex[i + 1])));
  return out;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

int64_t parse_byte_budget(const std::string& text, int64_t hundred_percent, const std::string& option) {
  auto bad = [&](const std::string& why) {
    return UsageError(option + " '" + text + "': " + why +
                      " (give bytes such as 2500000, 2.5MB or 64MiB, or a percentage such as 20%)");
  };
  if (text.empty()) throw bad("empty");
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !std::isfinite(value)) throw bad("not a number");
  std::string unit(end);
  double bytes = 0;
  if (unit == "%") {
    bytes = value / 100.0 * static_cast<double>(hundred_percent);
  } else {
    static const std::map<std::string, double> units = {
        {"", 1},         {"B", 1},          {"k", 1e3},  {"kB", 1e3},  {"K", 1e3},   {"KB", 1e3},
        {"M", 1e6},      {"MB", 1e6},       {"G", 1e9},  {"GB", 1e9},  {"Ki", 1024}, {"KiB", 1024},
        {"Mi", 1 << 20}, {"MiB", 1 << 20},  {"Gi", 1073741824.0},     {"GiB", 1073741824.0}};
    const auto it = units.find(unit);
    if (it == units.end()) throw bad("unknown unit '" + unit + "'");
    bytes = value * it->second;
  }
  if (!(bytes >= 1)) throw bad("not a positive size");
  if (bytes >= 9.2e18) throw bad("too large");
  return static_cast<int64_t>(std::floor(bytes));
}

}  // namespace rwkvlite::cli
