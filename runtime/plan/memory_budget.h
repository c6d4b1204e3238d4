// A memory budget as a user gives it: bytes ("2500000", "2.5MB", "64MiB": k/M/G decimal, Ki/Mi/Gi
// binary, an optional trailing B) or a percentage ("20%") of a model's dense FP16 weight bytes,
// which only the model knows. Parsed where the option is read; resolved once the model is open.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace rwkvlite {

struct MemoryBudget {
  std::string text;              // as given, for messages
  std::string option;            // how the caller spells the option, for messages
  std::optional<int64_t> bytes;  // set unless a percentage
  std::optional<double> percent;

  // UsageError naming `option` for anything else, a non-positive value or one beyond int64.
  static MemoryBudget parse(const std::string& text, const std::string& option);
  // Bytes for a model whose 100% is `hundred_percent`; UsageError for a percentage that comes
  // to less than one byte, or when `hundred_percent` is 0 (unknown) and a percentage was given.
  int64_t resolve(int64_t hundred_percent) const;
};

}  // namespace rwkvlite
