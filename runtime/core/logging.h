// Logging for the CLIs: spdlog on stderr (stdout is reserved for results), with a level
// chosen by --log-level, or by --quiet, which is level warn: only warnings and errors reach
// stderr, and live progress lines (runtime/core/progress.h) are not drawn either, since they
// are drawn only while info messages are logged. Both flags are parsed by
// tools/common/run_main.h.
#pragma once

#include <string>

namespace rwkvlite {

// Installs the stderr logger; level is one of trace, debug, info, warn, error, off.
void setup_logging(const std::string& level);

// True when stderr is a terminal (live progress bars are drawn only then).
bool stderr_is_terminal();

}  // namespace rwkvlite
