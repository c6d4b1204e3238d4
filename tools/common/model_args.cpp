#include "tools/common/model_args.h"

#include "tools/common/run_main.h"

namespace rwkvlite::tools {

void ModelArgs::add_to(CLI::App& cmd, const std::string& model_help, bool with_tokenizer) {
  cmd.add_option("model", path, model_help)->required();
  cmd.add_option("--threads", threads, "Worker threads for matrix products")->check(CLI::Range(1, 256));
  cmd.add_option("--ln-x-eps", ln_x_eps,
                 "Group-norm epsilon of v5/v6/v7 time-mix in a dense model (default: what the file implies; "
                 "rwkv.cpp files use 1e-5 for v5 and 64e-5 for v6/v7, BlinkDL .pth files 64e-5)")
      ->check(group_norm_epsilon());
  if (with_tokenizer) {
    cmd.add_option("--tokenizer", tokenizer,
                   "bytes | world | PATH to a World-format vocabulary (default: from the vocabulary size)");
  }
}

Model ModelArgs::load_dense() const { return load_dense_model(path, ln_x_eps); }

RunnableModel ModelArgs::load_runnable(RuntimeOptions runtime) const {
  runtime.threads = threads;
  return load_runnable_model(path, runtime, ln_x_eps);
}

void BudgetArgs::add_to(CLI::App& cmd) {
  cmd.add_option("--memory-budget", memory_budget,
                 "Resident weight bytes the run may hold: bytes (2500000, 2.5MB, 64MiB) or a percentage of dense FP16 "
                 "(20%, elastic files). An elastic file chooses a stored form per matrix to fit it, streaming layers "
                 "when holding them all does not fit; any other file that does not fit fails (exit 5)");
  add_stream_options_to(cmd);
}

void BudgetArgs::add_stream_options_to(CLI::App& cmd) {
  cmd.add_flag("--stream", stream, "Elastic files: stream layers even when holding them all fits the budget");
  cmd.add_flag("--sequential", sequential,
               "Streamed layers: load each layer, then compute it (no loader thread), for comparison with the pipeline");
  cmd.add_option("--io-bandwidth", io_bandwidth_mb_s,
                 "Streamed layers: throttle reads to this many MB/s (10^6 bytes), emulating flash storage")
      ->check(CLI::PositiveNumber);
}

void BudgetArgs::apply(RuntimeOptions& runtime) const {
  if (!memory_budget.empty()) runtime.memory_budget = MemoryBudget::parse(memory_budget, "--memory-budget");
  runtime.stream = stream;
  runtime.stream_options.pipelined = !sequential;
  if (io_bandwidth_mb_s > 0) runtime.stream_options.io_bandwidth_bytes_per_second = io_bandwidth_mb_s * 1e6;
}

}  // namespace rwkvlite::tools
