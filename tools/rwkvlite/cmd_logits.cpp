// rwkvlite logits MODEL (--prompt TEXT | --prompt-hex HEX) [-o FILE]: the final logits after
// feeding a prompt to a fresh state, as little-endian float32 (for parity checks against other
// engines), or as text on stdout.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "tools/common/model_args.h"
#include "tools/rwkvlite/cli_common.h"
#include "tools/rwkvlite/commands.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/tokenizer/tokenizer.h"

namespace rwkvlite::cli {

void register_logits(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("logits", "Write the logits after a prompt (little-endian float32)");
  auto args = std::make_shared<tools::ModelArgs>();
  struct Opts {
    std::string prompt, prompt_hex, out;
  };
  auto o = std::make_shared<Opts>();
  args->add_to(*cmd, "Model file: compact (from rwkvlite compress), rwkv.cpp .bin, .safetensors or .pth", true);
  auto* p = cmd->add_option("--prompt", o->prompt, "Prompt text");
  auto* h = cmd->add_option("--prompt-hex", o->prompt_hex, "Prompt as hex bytes, e.g. 22696e");
  p->excludes(h);
  cmd->add_option("-o,--output", o->out, "Binary output file (default: one logit per line on stdout)")->check(tools::output_file());
  cmd->callback([&action, args, o] {
    action = [args, o] {
      const std::string prompt = o->prompt_hex.empty() ? o->prompt : parse_hex(o->prompt_hex);
      if (prompt.empty()) throw UsageError("give a non-empty --prompt or --prompt-hex");
      tools::RunnableModel model = args->load_runnable(RuntimeOptions{});
      const auto tokenizer = tokenizer_for(model.vocab, args->tokenizer);
      std::vector<float> logits(static_cast<size_t>(model.vocab));
      model.predictor->reset();
      for (int32_t t : tokenizer->encode(prompt)) model.predictor->feed(t, logits.data());
      if (o->out.empty()) {
        for (float v : logits) std::printf("%.9g\n", v);
        return 0;
      }
      // The format is little-endian float32; this build targets little-endian hosts only.
      static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian host required");
      AtomicFile f(o->out);
      f.write(logits.data(), logits.size() * sizeof(float));
      f.commit();
      spdlog::info("wrote {} logits to {}", logits.size(), o->out);
      return 0;
    };
  });
}

}  // namespace rwkvlite::cli
