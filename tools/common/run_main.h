// The one main() of every rwkvlite executable: parses the command line with CLI11, then runs
// the chosen action and maps what it throws to the documented exit codes (runtime/core/error.h):
// 0 ok, 1 internal error, 2 usage or config error, 3 bad input file, 5 resource limit.
// Results go to stdout; errors are logged once on stderr.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace rwkvlite::tools {

using Action = std::function<int()>;  // returns the process exit code

// --log-level LEVEL and --quiet (only warnings and errors on stderr, no progress lines); the
// two exclude each other.
struct LoggingArgs {
  std::string level = "info";
  bool quiet = false;

  void add_to(CLI::App& app);
  std::string effective_level() const { return quiet ? "warn" : level; }
};

// CLI11 check for every option naming an output file: a directory is a usage error (exit 2)
// while parsing, before any work, not a failed rename at the end. "-" (stdout) passes.
const CLI::Validator& output_file();

// CLI11 check for --ln-x-eps: a number in (0, kMaxLnXEps] (NaN, Inf and 1e30 are usage errors).
const CLI::Validator& group_norm_epsilon();

// Parses argv into `app` (a parse error or --help exits 2 or 0 after CLI11's message), sets up
// logging as `logging` says (read after parsing), then runs `action` (usage error when none was
// chosen). Never throws.
int run_main(CLI::App& app, int argc, char** argv, const LoggingArgs& logging, const Action& action);

}  // namespace rwkvlite::tools
