// rwkvlite compress MODEL -o OUT --config FILE [--set k=v ...] [--dry-run] [--force] [--seed N]
// rwkvlite compress IN... [--inputs LIST] --output-dir DIR --config FILE [...]  (docs/batch.md)
// rwkvlite compress MODEL -o OUT --profile PROFILE (--target-bytes B | --max-bpb-increase PCT)
//   [--method rtn|gptq]: instead of a config, mixed precision planned from MODEL's sensitivity
//   profile (docs/mixed-precision.md); the config it makes is in the report.
#include <spdlog/spdlog.h>

#include "tools/rwkvlite/batch_compress.h"
#include "tools/rwkvlite/batch_inputs.h"
#include "tools/rwkvlite/cli_common.h"
#include "tools/rwkvlite/commands.h"
#include "tools/rwkvlite/profile_plan.h"
#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/pipeline.h"
#include "runtime/core/error.h"

namespace rwkvlite::cli {

namespace {

struct CompressCommand {
  CompressOptions options;          // the single form as is; the batch's shared settings
  std::vector<std::string> inputs;  // positional: one MODEL, or paths and glob patterns
  std::string inputs_list, output_dir;
  ProfilePlanRequest mixed{.budget_option = "--target-bytes"};  // --profile and its target
};

// --profile: the plan's config becomes the run's config (text, named after the profile).
void use_mixed_precision_plan(CompressCommand& c) {
  if (c.mixed.profile_path.empty()) {
    if (!c.mixed.memory_budget.empty() || c.mixed.max_bpb_increase >= 0)
      throw UsageError("--target-bytes and --max-bpb-increase need --profile PROFILE (rwkvlite profile --json)");
    if (c.options.config_path.empty()) throw UsageError("give -c CONFIG, or --profile PROFILE with a target");
    return;
  }
  if (!c.options.config_path.empty()) throw UsageError("-c CONFIG and --profile exclude each other");
  if (!c.output_dir.empty()) throw UsageError("--profile plans one model: use -o OUTPUT, not --output-dir");
  if (c.mixed.memory_budget.empty() == (c.mixed.max_bpb_increase < 0))
    throw UsageError("--profile needs exactly one of --target-bytes and --max-bpb-increase");
  const ProfilePlan p = plan_from_profile(c.mixed);
  if (!p.plan.feasible) throw UsageError(p.infeasible_message());
  spdlog::info("mixed precision from {}: {} weight bytes ({:.1f}% of dense FP16), predicted {:.5f} bits/byte "
               "({:+.2f}%) on the profile's calibration text",
               c.mixed.profile_path, p.plan.weight_bytes,
               100.0 * static_cast<double>(p.plan.weight_bytes) / static_cast<double>(p.profile.dense_fp16_bytes),
               p.plan.predicted_bits_per_byte,
               100.0 * p.plan.predicted_delta_bits_per_byte / p.profile.base_bits_per_byte);
  c.options.config_path = c.mixed.profile_path + " (mixed precision)";
  c.options.config_text = p.config_toml;
}

// -o OUTPUT is the single form, unchanged: exactly one MODEL taken literally. --output-dir is
// the batch form. Anything else is a usage error before anything is read.
int run_compress_command(CompressCommand& c) {
  use_mixed_precision_plan(c);
  if (!c.options.output_path.empty()) {
    if (!c.output_dir.empty()) throw UsageError("-o OUTPUT and --output-dir DIR exclude each other");
    if (c.inputs.size() != 1 || !c.inputs_list.empty()) {
      throw UsageError("-o OUTPUT takes exactly one MODEL; compress several with --output-dir DIR");
    }
    c.options.model_path = c.inputs[0];
    return run_compress(c.options, builtin_passes());
  }
  if (c.output_dir.empty()) throw UsageError("give -o OUTPUT (one MODEL) or --output-dir DIR (a batch)");
  BatchCompressOptions batch;
  batch.inputs = expand_input_patterns(c.inputs);
  if (!c.inputs_list.empty()) {
    for (std::string& path : read_input_list(c.inputs_list)) batch.inputs.push_back(std::move(path));
  }
  batch.output_dir = c.output_dir;
  batch.common = c.options;
  return run_batch_compress(batch, builtin_passes());
}

}  // namespace

void register_compress(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("compress", "Compress dense models into compact files, driven by a TOML config");
  auto c = std::make_shared<CompressCommand>();
  CompressOptions* o = &c->options;
  cmd->add_option("model", c->inputs,
                  "Dense model: rwkv.cpp .bin, .safetensors or .pth; with --output-dir several, and quoted glob "
                  "patterns");
  cmd->add_option("-o,--output", o->output_path, "Compact output file (one MODEL)")->check(tools::output_file());
  cmd->add_option("--output-dir", c->output_dir, "Batch: write DIR/<model stem>.rwkvlite for every MODEL");
  cmd->add_option("--inputs", c->inputs_list,
                  "Batch: a file of model paths, one per line ('#' comments; relative to the file's directory)");
  cmd->add_option("-c,--config", o->config_path, "TOML config (see configs/); or --profile with a target");
  cmd->add_option("--profile", c->mixed.profile_path,
                  "Instead of a config: mixed precision planned from this sensitivity profile (rwkvlite profile --json)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--target-bytes", c->mixed.memory_budget,
                  "With --profile: the best model in this many weight bytes (2500000, 2.5MB, 64MiB, or 20% of dense FP16)");
  cmd->add_option("--max-bpb-increase", c->mixed.max_bpb_increase,
                  "With --profile: the smallest model predicted within this many percent of dense bits per byte")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--method", c->mixed.method, "With --profile: rtn, or gptq where calibration statistics exist")
      ->check(CLI::IsMember({"rtn", "gptq"}))
      ->capture_default_str();
  cmd->add_option("--set", o->overrides, "Override a config value: key=value (repeatable), e.g. pass.0.divisor=4");
  cmd->add_option("--seed", o->seed, "Seed (overrides calibration.seed)");
  cmd->add_flag("--dry-run", o->dry_run, "Print the planned file size and peak memory without compressing");
  cmd->add_flag("--force", o->force, "Overwrite existing output files");
  cmd->add_option("--threads", o->threads, "Worker threads")->check(CLI::Range(1, 256));
  cmd->add_option("--ln-x-eps", o->ln_x_eps, "Group-norm epsilon override (see rwkvlite eval --help)")
      ->check(tools::group_norm_epsilon());
  cmd->add_option("--report", o->report_path, "JSON report path (default: OUTPUT.report.json; not in a batch). Never the input or the output; an existing report needs --force, like the output")->check(tools::output_file());
  cmd->add_option("--calibration-cache", o->calibration_cache_dir,
                  "Directory of cached calibration statistics, shared by runs (docs/config.md)")
      ->envname("RWKVLITE_CALIBRATION_CACHE");
  cmd->callback([&action, c] { action = [c] { return run_compress_command(*c); }; });
}

}  // namespace rwkvlite::cli
