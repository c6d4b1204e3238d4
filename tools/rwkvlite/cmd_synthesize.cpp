// rwkvlite synthesize --arch v5.2|v7 --layers L --embd D --vocab V [--ffn F] [--head-size S]
//   --seed N [--dtype fp32|fp16|bf16] -o OUT: a seeded random checkpoint of any shape (see
//   converters/synthetic_model.h), to measure compression and the runtime at sizes
//   no bundled model has.
#include <spdlog/spdlog.h>

#include <chrono>

#include "tools/rwkvlite/cli_common.h"
#include "tools/rwkvlite/commands.h"
#include "converters/model_io.h"
#include "runtime/core/file_io.h"
#include "converters/synthetic_model.h"

namespace rwkvlite::cli {

namespace {

struct SynthesizeArgs {
  std::string arch = "v5.2";
  SyntheticModelOptions model;
  std::string dtype = "fp32";
  std::string output;
  bool force = false;
};

}  // namespace

void register_synthesize(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("synthesize", "Write a seeded random checkpoint of any shape (for size and speed tests)");
  auto a = std::make_shared<SynthesizeArgs>();
  cmd->add_option("--arch", a->arch, "Architecture")->check(CLI::IsMember({"v5.2", "v7"}))->capture_default_str();
  cmd->add_option("--layers", a->model.n_layer, "Layers")->capture_default_str();
  cmd->add_option("--embd", a->model.n_embd, "Embedding width D")->capture_default_str();
  cmd->add_option("--vocab", a->model.n_vocab, "Vocabulary size")->capture_default_str();
  cmd->add_option("--ffn", a->model.ffn_size, "Channel-mix width (0: 3.5 D for v5.2, 4 D for v7)")->capture_default_str();
  cmd->add_option("--head-size", a->model.head_size, "Time-mix head size")->capture_default_str();
  cmd->add_option("--seed", a->model.seed, "Seed of every value")->required();
  cmd->add_option("--dtype", a->dtype, "Stored precision")->check(CLI::IsMember({"fp32", "fp16", "bf16"}))->capture_default_str();
  cmd->add_option("-o,--output", a->output, "Output file; format from the extension: .bin, .safetensors, .pth")->required()->check(tools::output_file());
  cmd->add_flag("--force", a->force, "Overwrite an existing output file");
  cmd->callback([&action, a] {
    action = [a] {
      refuse_existing_output(a->output, a->force);
      a->model.arch = arch_from_name(a->arch);
      const auto t0 = std::chrono::steady_clock::now();
      const Model m = make_synthetic_model(a->model);
      const double t_make = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      save_model(m, a->output, a->dtype);
      const double t_all = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      spdlog::info("synthesized RWKV {} {} x {}, vocabulary {}, FFN {}: {:.2f} M parameters in {:.1f} s, written in {:.1f} s",
                   a->arch, m.dims.n_layer, m.dims.n_embd, m.dims.n_vocab, m.dims.ffn_size, m.parameter_count() / 1e6,
                   t_make, t_all - t_make);
      spdlog::info("wrote {} ({}, {})", a->output, a->dtype, human_bytes(static_cast<double>(file_size_or_throw(a->output))));
      return 0;
    };
  });
}

}  // namespace rwkvlite::cli
