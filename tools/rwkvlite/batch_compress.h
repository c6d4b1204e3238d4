// Batch `rwkvlite compress IN... --output-dir DIR`: one config, many checkpoints, each
// compressed by run_compress into DIR/<stem>.rwkvlite (+ .report.json), a failure of one not
// stopping the others, and a summary on stdout and in DIR/batch-summary.json (docs/batch.md).
#pragma once

#include <string>
#include <vector>

#include "compress/pipeline/pass_registry.h"
#include "compress/pipeline/pipeline.h"

namespace rwkvlite::cli {

struct BatchCompressOptions {
  std::vector<std::string> inputs;  // checkpoint paths, already expanded (batch_inputs.h)
  std::string output_dir;
  // What every item shares: config_path, overrides, seed, force, threads, ln_x_eps. Its
  // model_path, output_path and report_path are set per item.
  CompressOptions common;
};

// The name of the summary file in the output directory.
inline constexpr const char* kBatchSummaryName = "batch-summary.json";

// Checks everything that can be checked before any item runs, each a UsageError (exit 2) with
// nothing written: the config and overrides, at least one input, two inputs with the same stem,
// existing outputs (and the summary) without --force, an output directory that is a file. Then
// compresses the inputs in order and returns 0 when all succeeded, kExitPartialFailure (6) when
// any failed, all of them included.
int run_batch_compress(const BatchCompressOptions& options, const PassRegistry& passes);

}  // namespace rwkvlite::cli
