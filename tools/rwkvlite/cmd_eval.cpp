// rwkvlite eval MODEL [--text FILE] [--max-bytes N] [--reference MODEL] [--json FILE]:
// teacher-forced bits per byte, top-1 accuracy, speed, load time and memory of a dense or
// compact model, the same evaluation and report as rwkvlite-run (tools/common/text_eval.h).
#include "tools/common/json_output.h"
#include "tools/common/model_args.h"
#include "tools/common/text_args.h"
#include "tools/common/text_eval.h"
#include "tools/rwkvlite/commands.h"

namespace rwkvlite::cli {

namespace {

struct EvalCommand {
  tools::ModelArgs model;
  tools::TextArgs text;
  tools::EvalArgs eval;
  tools::BudgetArgs budget;
};

int run_eval(const EvalCommand& c) {
  RuntimeOptions runtime;
  c.budget.apply(runtime);
  tools::RunnableModel model = c.model.load_runnable(runtime);
  const auto tokenizer = tokenizer_for(model.vocab, c.model.tokenizer);
  const auto report = tools::evaluate_on_text(c.model, model, *tokenizer, c.text, c.eval.reference_path);
  tools::publish_report(report, c.eval.json_path);
  return 0;
}

}  // namespace

void register_eval(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("eval", "Bits per byte and top-1 accuracy of a model on text");
  auto c = std::make_shared<EvalCommand>();
  c->model.add_to(*cmd, "Model file: compact (from rwkvlite compress), rwkv.cpp .bin, .safetensors or .pth", true);
  c->text.add_to(*cmd);
  c->eval.add_to(*cmd);
  c->budget.add_to(*cmd);
  cmd->callback([&action, c] { action = [c] { return run_eval(*c); }; });
}

}  // namespace rwkvlite::cli
