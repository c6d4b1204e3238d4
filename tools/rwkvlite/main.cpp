// rwkvlite: inspect, convert, evaluate and compress RWKV checkpoints.
// Results go to stdout, logs and progress to stderr. Exit codes: 0 ok, 1 internal error,
// 2 usage or config error, 3 bad input file, 4 accuracy gate failed, 5 resource limit,
// 6 some items of a batch failed (compress --output-dir, docs/batch.md).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "runtime/core/error.h"
#include "runtime/core/version.h"
#include "tools/common/run_main.h"
#include "tools/rwkvlite/commands.h"
#ifdef RWKVLITE_WITH_TORCH
#include "compress/algo/torch_parts.h"
#endif

int main(int argc, char** argv) {
  using namespace rwkvlite;
  CLI::App app{"rwkvlite " RWKVLITE_VERSION ": compress RWKV language models for small devices"};
  app.require_subcommand(1);
  app.set_version_flag("--version", RWKVLITE_VERSION);
  tools::LoggingArgs logging;
  logging.add_to(app);
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
  cli::register_sweep(app, action);
  cli::register_check(app, action);

#ifdef RWKVLITE_WITH_TORCH
  register_torch_parts();  // .pth files and the predictor and cluster-head trainers
#endif
  return tools::run_main(app, argc, argv, logging, action);
}
