// Process resource figures reported by every command (peak RSS is a first-class output).
#pragma once

#include <cstdint>

namespace rwkvlite {

// Peak resident set size of this process so far, in bytes (getrusage).
uint64_t peak_rss_bytes();
// Starts a new peak: the kernel's high-water mark of resident memory drops to the current
// RSS (Linux /proc/self/clear_refs "5"), so that peak_rss_since_reset_bytes() gives the
// peak of the work that follows. false when the kernel does not allow it. Note that the
// reset also lowers what peak_rss_bytes() reports from then on: a caller that resets keeps
// the maximum of the peaks it read.
bool reset_peak_rss();
// Peak RSS since the last reset_peak_rss() (VmHWM of /proc/self/status), in bytes;
// peak_rss_bytes() when that is unavailable.
uint64_t peak_rss_since_reset_bytes();
// Current resident set size in bytes (/proc/self/statm), 0 if unavailable.
uint64_t current_rss_bytes();

}  // namespace rwkvlite
