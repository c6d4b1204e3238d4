// rwkvlite: inspect, convert, evaluate and compress RWKV checkpoints.
// Results go to stdout, logs and progress to stderr. Exit codes: 0 ok, 1 internal error,
// 2 usage or config error, 3 bad input file, 4 accuracy gate failed, 5 resource limit,
// 6 some items of a batch failed (compress --output-dir, docs/batch.md).
#include <cstdlib>  // defines __GLIBC__ on glibc systems
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "runtime/core/error.h"
#include "runtime/core/version.h"
#include "tools/common/run_main.h"
#include "tools/rwkvlite/commands.h"
#ifdef RWKVLITE_WITH_TORCH
#include "compress/algo/torch_parts.h"
#endif

namespace {

// glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB), so
// after the first few, compress's big temporaries (per-layer labels and products, SVD and
// k-means scratch, LibTorch's batches) come from the heap, whose freed pages are not returned:
// peak RSS grew by the sum of passes' scratch, not the largest. Fixed thresholds keep blocks
// of 1 MiB and more in their own mappings, returned when freed. At the 0.1B shape this cut
// compress's peak RSS from 2,622 MB to 2,043 MB (docs/benchmarks.md), with identical output.
void return_large_blocks_to_the_system() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rwkvlite;
  return_large_blocks_to_the_system();
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
  cli::register_profile(app, action);
  cli::register_plan(app, action);

#ifdef RWKVLITE_WITH_TORCH
  register_torch_parts();  // .pth files and the predictor and cluster-head trainers
#endif
  return tools::run_main(app, argc, argv, logging, action);
}
