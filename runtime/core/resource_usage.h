// Process resource figures reported by every command (peak RSS is a first-class output).
#pragma once

#include <cstdint>

namespace rwkvlite {

// Peak resident set size of this process so far, in bytes (getrusage).
uint64_t peak_rss_bytes();
// Current resident set size in bytes (/proc/self/statm), 0 if unavailable.
uint64_t current_rss_bytes();

}  // namespace rwkvlite
