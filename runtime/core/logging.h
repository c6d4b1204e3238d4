// Logging for the CLIs: spdlog on stderr (stdout is reserved for results), with a level
// chosen by --log-level / --quiet.
#pragma once

#include <string>

namespace rwkvlite {

// Installs the stderr logger; level is one of trace, debug, info, warn, error, off.
void setup_logging(const std::string& level);

// True when stderr is a terminal (live progress bars are drawn only then).
bool stderr_is_terminal();

}  // namespace rwkvlite
