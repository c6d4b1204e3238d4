#include "runtime/core/logging.h"

#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "runtime/core/error.h"

namespace rwkvlite {

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("rwkvlite");
  logger->set_pattern("[%H:%M:%S.%e] %^%l%$: %v");
  const auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw UsageError("unknown log level '" + level + "' (trace, debug, info, warn, error, off)");
  }
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
}

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

}  // namespace rwkvlite
