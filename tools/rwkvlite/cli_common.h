// Small helpers of the rwkvlite subcommands. What rwkvlite-run shares with them (model and
// text options, loading, evaluation, generation, JSON output) is in tools/common/.
#pragma once

#include <string>

namespace rwkvlite::cli {

// Hex string ("22696e") -> bytes; UsageError on odd length or a non-hex digit.
std::string parse_hex(const std::string& hex);

// "1.50 MiB": a byte count for people.
std::string human_bytes(double bytes);

}  // namespace rwkvlite::cli
