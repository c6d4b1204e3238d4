#include "tools/common/run_main.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <new>

#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace rwkvlite::tools {

void LoggingArgs::add_to(CLI::App& app) {
  // Checked while parsing, so an unknown level is a usage message before any logger exists.
  auto* l = app.add_option("--log-level", level, "trace, debug, info, warn, error or off")
                ->capture_default_str()
                ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr (same as --log-level warn)")->excludes(l);
}

const CLI::Validator& output_file() {
  static const CLI::Validator v(
      [](const std::string& path) -> std::string {
        std::error_code ec;
        if (path != "-" && std::filesystem::is_directory(path, ec)) {
          return "'" + path + "' is a directory; name a file (for example '" +
                 (std::filesystem::path(path) / "out").string() + "')";
        }
        return "";
      },
      "FILE");
  return v;
}

const CLI::Validator& group_norm_epsilon() {
  static const CLI::Validator v(
      [](const std::string& text) -> std::string {
        char* end = nullptr;
        const double eps = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0' || !plausible_ln_x_eps(eps)) {
          return "the group-norm epsilon must be a number in (0, " + std::to_string(kMaxLnXEps) + "], not '" + text + "'";
        }
        return "";
      },
      "EPS");
  return v;
}

int run_main(CLI::App& app, int argc, char** argv, const LoggingArgs& logging, const Action& action) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;  // CLI11's own codes (100+) mapped to the documented one
  }
  try {
    setup_logging(logging.effective_level());
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
