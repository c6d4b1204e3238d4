// Small helpers of the rwkvlite subcommands. What rwkvlite-run shares with them (model and
// text options, loading, evaluation, generation, JSON output) is in tools/common/.
#pragma once

#include <cstdint>
#include <string>

namespace rwkvlite::cli {

// Hex string ("22696e") -> bytes; UsageError on odd length or a non-hex digit.
std::string parse_hex(const std::string& hex);

// "1.50 MiB": a byte count for people.
std::string human_bytes(double bytes);

// A byte budget as given on the command line: "2500000", "2.5MB", "64MiB", "1GB" (k/M/G decimal,
// Ki/Mi/Gi binary, an optional trailing B) or "20%" of `hundred_percent` bytes. `option` names it
// in the UsageError for anything else, a non-positive value or one beyond int64.
int64_t parse_byte_budget(const std::string& text, int64_t hundred_percent, const std::string& option);

}  // namespace rwkvlite::cli
