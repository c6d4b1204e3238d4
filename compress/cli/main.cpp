// rwkvlite: inspect, convert, evaluate and compress RWKV checkpoints.
// Results go to stdout, logs and progress to stderr. Exit codes: 0 ok, 1 internal error,
// 2 usage or config error, 3 bad input file, 4 accuracy gate failed, 5 resource limit.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "converters/model_io.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/version.h"
#ifdef RWKVLITE_WITH_TORCH
#include "converters/pth_file.h"
#endif

int main(int argc, char** argv) {
  using namespace rwkvlite;
  CLI::App app{"rwkvlite " RWKVLITE_VERSION ": compress RWKV language models for small devices"};
  app.require_subcommand(1);
  app.set_version_flag("--version", RWKVLITE_VERSION);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  app.fallthrough();

  cli::Action action;
  cli::register_inspect(app, action);
  cli::register_convert(app, action);
  cli::register_eval(app, action);
  cli::register_generate(app, action);
  cli::register_logits(app, action);
  cli::register_compress(app, action);
  cli::register_verify(app, action);
  cli::register_synthesize(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;  // CLI11's own codes (100+) mapped to the documented one
  }
  try {
    setup_logging(log_level);
#ifdef RWKVLITE_WITH_TORCH
    enable_pth_support();
#endif
    return action ? action() : kExitUsage;
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
