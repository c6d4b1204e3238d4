// rwkvlite generate MODEL --prompt TEXT [-n N --temperature T --top-p P --seed S]: continues a
// prompt by sampling (tools/common/generate.h; the same sampler as rwkvlite-run --prompt).
#include <cstdio>

#include "tools/common/generate.h"
#include "tools/common/model_args.h"
#include "tools/rwkvlite/commands.h"

namespace rwkvlite::cli {

void register_generate(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("generate", "Continue a prompt by sampling from a model");
  auto model = std::make_shared<tools::ModelArgs>();
  auto gen = std::make_shared<tools::GenerateArgs>();
  model->add_to(*cmd, "Model file: compact (from rwkvlite compress), rwkv.cpp .bin, .safetensors or .pth", true);
  gen->add_to(*cmd)->required();
  cmd->callback([&action, model, gen] {
    action = [model, gen] {
      tools::RunnableModel m = model->load_runnable(RuntimeOptions{});
      const auto tokenizer = tokenizer_for(m.vocab, model->tokenizer);
      tools::generate(*m.predictor, *tokenizer, *gen, stdout);
      return 0;
    };
  });
}

}  // namespace rwkvlite::cli
