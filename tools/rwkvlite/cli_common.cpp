#include "tools/rwkvlite/cli_common.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "runtime/core/error.h"
#include "runtime/plan/memory_budget.h"

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
  return MemoryBudget::parse(text, option).resolve(hundred_percent);
}

}  // namespace rwkvlite::cli
