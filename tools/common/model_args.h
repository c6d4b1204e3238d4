// The model options every command that runs or reads a model takes (path, --threads,
// --ln-x-eps, --tokenizer), shared by the rwkvlite subcommands and rwkvlite-run so both spell
// and document them the same way.
#pragma once

#include <CLI/CLI.hpp>

#include <limits>
#include <optional>
#include <string>

#include "runtime/core/model.h"
#include "runtime/store/compact_model.h"
#include "tools/common/model_loading.h"

namespace rwkvlite::tools {

struct ModelArgs {
  std::string path;
  float ln_x_eps = std::numeric_limits<float>::quiet_NaN();  // NaN: keep what the file implies
  int threads = 2;
  std::string tokenizer;  // "" (choose from the vocabulary size), "bytes", "world" or a vocab path

  // `model_help` says which files the command reads.
  void add_to(CLI::App& cmd, const std::string& model_help, bool with_tokenizer);
  // The dense canonical model (any format the converters read), for commands that look at
  // tensors: inspect, convert, logits.
  Model load_dense() const;
  // A compact or dense file ready to predict tokens with `runtime` (its threads are ours).
  RunnableModel load_runnable(RuntimeOptions runtime) const;
};

// --memory-budget B|P% and the streaming options, for the commands that run a model
// (rwkvlite-run, rwkvlite eval). The budget is kept as given and parsed when the command runs,
// so that a bad value is one usage error (exit 2).
struct BudgetArgs {
  std::string memory_budget;
  bool stream = false;
  bool sequential = false;
  double io_bandwidth_mb_s = 0;  // 0: not throttled
  void add_to(CLI::App& cmd);
  // --stream, --sequential and --io-bandwidth alone (rwkvlite plan has its own --memory-budget).
  void add_stream_options_to(CLI::App& cmd);
  // Sets runtime.memory_budget, stream and stream_options.
  void apply(RuntimeOptions& runtime) const;
};

}  // namespace rwkvlite::tools
