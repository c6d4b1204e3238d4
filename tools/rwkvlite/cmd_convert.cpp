// rwkvlite convert IN OUT [--dtype fp32|fp16|bf16]: between rwkv.cpp, safetensors and .pth,
// the output format taken from OUT's extension.
#include <spdlog/spdlog.h>

#include <filesystem>

#include "tools/rwkvlite/cli_common.h"
#include "tools/rwkvlite/commands.h"
#include "converters/model_io.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"

namespace rwkvlite::cli {

void register_convert(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("convert", "Convert between rwkv.cpp (.bin), safetensors and PyTorch (.pth) files");
  auto args = std::make_shared<ModelArgs>();
  auto out = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>("fp32");
  auto force = std::make_shared<bool>(false);
  args->add_to(*cmd, false);
  cmd->add_option("output", *out, "Output file; format from the extension: .bin (rwkv.cpp), .safetensors, .pth")
      ->required();
  cmd->add_option("--dtype", *dtype, "Stored precision")->check(CLI::IsMember({"fp32", "fp16", "bf16"}))->capture_default_str();
  cmd->add_flag("--force", *force, "Overwrite an existing output file");
  cmd->callback([&action, args, out, dtype, force] {
    action = [args, out, dtype, force] {
      if (!*force && std::filesystem::exists(*out)) {
        throw UsageError("'" + *out + "' exists; pass --force to overwrite it");
      }
      const Model m = args->load();
      save_model(m, *out, *dtype);
      spdlog::info("wrote {} ({}, {})", *out, *dtype, human_bytes(static_cast<double>(file_size_or_throw(*out))));
      return 0;
    };
  });
}

}  // namespace rwkvlite::cli
