// rwkvlite compress MODEL -o OUT --config FILE [--set k=v ...] [--dry-run] [--force] [--seed N]
#include "tools/rwkvlite/cli_common.h"
#include "tools/rwkvlite/commands.h"
#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/pipeline.h"

namespace rwkvlite::cli {

void register_compress(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("compress", "Compress a dense model into one compact file, driven by a TOML config");
  auto o = std::make_shared<CompressOptions>();
  cmd->add_option("model", o->model_path, "Dense model: rwkv.cpp .bin, .safetensors or .pth")->required();
  cmd->add_option("-o,--output", o->output_path, "Compact output file")->required();
  cmd->add_option("-c,--config", o->config_path, "TOML config (see configs/)")->required();
  cmd->add_option("--set", o->overrides, "Override a config value: key=value (repeatable), e.g. pass.0.divisor=4");
  cmd->add_option("--seed", o->seed, "Seed (overrides calibration.seed)");
  cmd->add_flag("--dry-run", o->dry_run, "Print the planned file size and peak memory without compressing");
  cmd->add_flag("--force", o->force, "Overwrite an existing output file");
  cmd->add_option("--threads", o->threads, "Worker threads")->check(CLI::Range(1, 256));
  cmd->add_option("--ln-x-eps", o->ln_x_eps, "Group-norm epsilon override (see rwkvlite eval --help)");
  cmd->add_option("--report", o->report_path, "JSON report path (default: OUTPUT.report.json)");
  cmd->add_option("--calibration-cache", o->calibration_cache_dir, "Directory of cached calibration statistics, shared by runs (docs/config.md)")->envname("RWKVLITE_CALIBRATION_CACHE");
  cmd->callback([&action, o] { action = [o] { return run_compress(*o, builtin_passes()); }; });
}

}  // namespace rwkvlite::cli
