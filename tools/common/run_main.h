// The one main() of every rwkvlite executable: parses the command line with CLI11, then runs
// the chosen action and maps what it throws to the documented exit codes (runtime/core/error.h):
// 0 ok, 1 internal error, 2 usage or config error, 3 bad input file, 5 resource limit.
// Results go to stdout; errors are logged once on stderr.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace rwkvlite::tools {

using Action = std::function<int()>;  // returns the process exit code

// Parses argv into `app` (a parse error or --help exits 2 or 0 after CLI11's message), sets up
// logging at `log_level` (read after parsing), then runs `action` (usage error when none was
// chosen). Never throws.
int run_main(CLI::App& app, int argc, char** argv, const std::string& log_level, const Action& action);

}  // namespace rwkvlite::tools
