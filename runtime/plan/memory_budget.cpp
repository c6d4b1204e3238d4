#include "runtime/plan/memory_budget.h"

#include <cmath>
#include <cstdlib>
#include <map>

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

UsageError bad_budget(const std::string& option, const std::string& text, const std::string& why) {
  return UsageError(option + " '" + text + "': " + why +
                    " (give bytes such as 2500000, 2.5MB or 64MiB, or a percentage such as 20%)");
}

}  // namespace

MemoryBudget MemoryBudget::parse(const std::string& text, const std::string& option) {
  MemoryBudget b{.text = text, .option = option};
  if (text.empty()) throw bad_budget(option, text, "empty");
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !std::isfinite(value)) throw bad_budget(option, text, "not a number");
  const std::string unit(end);
  if (unit == "%") {
    if (!(value > 0)) throw bad_budget(option, text, "not a positive size");
    b.percent = value;
    return b;
  }
  static const std::map<std::string, double> units = {
      {"", 1},         {"B", 1},          {"k", 1e3},  {"kB", 1e3},  {"K", 1e3},   {"KB", 1e3},
      {"M", 1e6},      {"MB", 1e6},       {"G", 1e9},  {"GB", 1e9},  {"Ki", 1024}, {"KiB", 1024},
      {"Mi", 1 << 20}, {"MiB", 1 << 20},  {"Gi", 1073741824.0},     {"GiB", 1073741824.0}};
  const auto it = units.find(unit);
  if (it == units.end()) throw bad_budget(option, text, "unknown unit '" + unit + "'");
  const double bytes = value * it->second;
  if (!(bytes >= 1)) throw bad_budget(option, text, "not a positive size");
  if (bytes >= 9.2e18) throw bad_budget(option, text, "too large");
  b.bytes = static_cast<int64_t>(std::floor(bytes));
  return b;
}

int64_t MemoryBudget::resolve(int64_t hundred_percent) const {
  if (bytes) return *bytes;
  if (hundred_percent <= 0)
    throw UsageError(option + " '" + text + "': a percentage needs the model's dense FP16 size, which this file does not record; give bytes");
  const double b = *percent / 100.0 * static_cast<double>(hundred_percent);
  if (!(b >= 1)) throw bad_budget(option, text, "not a positive size");
  if (b >= 9.2e18) throw bad_budget(option, text, "too large");
  return static_cast<int64_t>(std::floor(b));
}

}  // namespace rwkvlite
