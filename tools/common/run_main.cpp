#include "tools/common/run_main.h"

#include <spdlog/spdlog.h>

#include <new>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace rwkvlite::tools {

int run_main(CLI::App& app, int argc, char** argv, const std::string& log_level, const Action& action) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;  // CLI11's own codes (100+) mapped to the documented one
  }
  try {
    setup_logging(log_level);
    if (!action) throw UsageError("no command given (see --help)");
    return action();
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    spdlog::error("out of memory");
    return kExitResourceLimit;
  } catch (const std::exception& e) {
    spdlog::error("internal error: {}", e.what());
    return kExitInternal;
  }
}

}  // namespace rwkvlite::tools
