// rwkvlite-run: the bundled minimal runtime. Runs a compact (or dense, non-.pth) model on text
// or a prompt and reports accuracy and memory. Does not link LibTorch.
//
//   rwkvlite-run MODEL [--text FILE] [--reference DENSE_MODEL] [--json FILE]
//   rwkvlite-run MODEL --prompt TEXT -n N
//
// Four stages: options -> load -> evaluate or generate -> report. Evaluation, its report (keys
// in tools/common/text_eval.h, the same as rwkvlite eval) and generation are shared with the
// rwkvlite subcommands; what is rwkvlite-run's own is the runtime overrides of a compact file.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "runtime/core/version.h"
#include "runtime/store/compact_model.h"
#include "tools/common/generate.h"
#include "tools/common/json_output.h"
#include "tools/common/model_args.h"
#include "tools/common/run_main.h"
#include "tools/common/text_args.h"
#include "tools/common/text_eval.h"

namespace {

using namespace rwkvlite;

struct RunOptions {
  tools::ModelArgs model;
  tools::TextArgs text;
  tools::EvalArgs eval;
  tools::GenerateArgs generate;
  CLI::Option* prompt = nullptr;  // given: generate instead of evaluating
  RuntimeOptions runtime;         // overrides of what the compact file stores
  tools::BudgetArgs budget;
  tools::LoggingArgs logging;
};

// The knobs of a compact file's on-demand parts; each unset one keeps the file's value.
void add_runtime_options(CLI::App& app, RuntimeOptions& ro) {
  app.add_option("--neuron-cache", ro.neuron_cache_fraction,
                 "Fraction of each layer's channel-mix neurons kept in memory (overrides the file)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--head-p", ro.head_p, "Clustered head: keep clusters until this much probability")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--head-min-clusters", ro.head_min_clusters, "Clustered head: keep at least N clusters")
      ->check(CLI::PositiveNumber);
  app.add_option("--head-max-clusters", ro.head_max_clusters, "Clustered head: keep at most N clusters")
      ->check(CLI::PositiveNumber);
  app.add_option("--head-cache-rows", ro.head_cache_rows, "Clustered head: head rows kept in memory (default: all that were read)")
      ->check(CLI::PositiveNumber);
  app.add_option("--embedding-cache-rows", ro.embedding_cache_rows, "Embedding rows kept in memory (reads rows on demand)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--audit-sparsity", ro.audit_sparsity,
               "Also compute every neuron exactly (uncounted copy) to report predictor recall and true sparsity");
}

// Stage 1: the command line.
void add_options(CLI::App& app, RunOptions& o) {
  o.model.add_to(app, "Compact file (from rwkvlite compress) or dense rwkv.cpp/safetensors model", true);
  CLI::Option* text = o.text.add_to(app);
  o.eval.add_to(app);
  o.generate.temperature = 0.0f;  // rwkvlite-run continues greedily unless asked to sample
  o.prompt = o.generate.add_to(app);
  o.prompt->description("Generate from this prompt instead of evaluating");
  o.prompt->excludes(text);
  add_runtime_options(app, o.runtime);
  o.budget.add_to(app);
  o.logging.add_to(app);
}

// Stages 2 to 4, once the command line is parsed.
int run(const RunOptions& o) {
  // Load: the model with this run's overrides and budget, and its tokenizer.
  RuntimeOptions runtime = o.runtime;
  o.budget.apply(runtime);
  tools::RunnableModel model = o.model.load_runnable(runtime);
  const auto tokenizer = tokenizer_for(model.vocab, o.model.tokenizer);
  // Generate (the output is the continuation itself) ...
  if (*o.prompt) {
    tools::generate(*model.predictor, *tokenizer, o.generate, stdout);
    return 0;
  }
  // ... or evaluate, then report.
  const auto report = tools::evaluate_on_text(o.model, model, *tokenizer, o.text, o.eval.reference_path);
  tools::publish_report(report, o.eval.json_path);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rwkvlite-run " RWKVLITE_VERSION ": run a compact or dense RWKV model and report accuracy and memory"};
  RunOptions options;
  add_options(app, options);
  return tools::run_main(app, argc, argv, options.logging, [&options] { return run(options); });
}
