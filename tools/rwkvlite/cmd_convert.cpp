// rwkvlite convert IN OUT [--dtype fp32|fp16|bf16]: between rwkv.cpp, safetensors and .pth,
// the output format taken from OUT's extension.
#include <spdlog/spdlog.h>

#include "tools/common/model_args.h"
#include "tools/rwkvlite/cli_common.h"
#include "tools/rwkvlite/commands.h"
#include "converters/model_io.h"
#include "runtime/core/file_io.h"

namespace rwkvlite::cli {

void register_convert(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("convert", "Convert between rwkv.cpp (.bin), safetensors and PyTorch (.pth) files");
  auto args = std::make_shared<tools::ModelArgs>();
  auto out = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>("fp32");
  auto force = std::make_shared<bool>(false);
  args->add_to(*cmd, "Model file: rwkv.cpp .bin, .safetensors or .pth", false);
  cmd->add_option("output", *out, "Output file; format from the extension: .bin (rwkv.cpp), .safetensors, .pth")
      ->required()
      ->check(tools::output_file());
  cmd->add_option("--dtype", *dtype, "Stored precision")->check(CLI::IsMember({"fp32", "fp16", "bf16"}))->capture_default_str();
  cmd->add_flag("--force", *force, "Overwrite an existing output file");
  cmd->callback([&action, args, out, dtype, force] {
    action = [args, out, dtype, force] {
      refuse_existing_output(*out, *force);
      const Model m = args->load_dense();
      save_model(m, *out, *dtype);
      spdlog::info("wrote {} ({}, {})", *out, *dtype, human_bytes(static_cast<double>(file_size_or_throw(*out))));
      return 0;
    };
  });
}

}  // namespace rwkvlite::cli
