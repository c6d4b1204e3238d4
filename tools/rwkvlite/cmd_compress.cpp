// rwkvlite compress MODEL -o OUT --config FILE [--set k=v ...] [--dry-run] [--force] [--seed N]
// rwkvlite compress IN... [--inputs LIST] --output-dir DIR --config FILE [...]  (docs/batch.md)
// rwkvlite compress MODEL -o OUT --profile PROFILE (--target-bytes B | --max-bpb-increase PCT)
//   [--method rtn|gptq]: instead of a config, mixed precision planned from MODEL's sensitivity
//   profile (docs/mixed-precision.md); the config it makes is in the report, and the result's
//   held-out bits per byte beside the prediction (--heldout-bytes).
#include <spdlog/spdlog.h>

#include "tools/rwkvlite/batch_compress.h"
#include "tools/rwkvlite/batch_inputs.h"
#include "tools/rwkvlite/cli_common.h"
#include "tools/common/json_output.h"
#include "tools/common/model_args.h"
#include "tools/common/text_args.h"
#include "tools/common/text_eval.h"
#include "tools/rwkvlite/check_gate.h"
#include "tools/rwkvlite/commands.h"
#include "tools/rwkvlite/profile_plan.h"
#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/pipeline.h"
#include "runtime/core/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace rwkvlite::cli {

namespace {

struct CompressCommand {
  CompressOptions options;          // the single form as is; the batch's shared settings
  std::vector<std::string> inputs;  // positional: one MODEL, or paths and glob patterns
  std::string inputs_list, output_dir;
  ProfilePlanRequest mixed{.budget_option = "--target-bytes"};  // --profile and its target
  uint64_t heldout_bytes = 30000;   // --profile: held-out bytes scored after compressing (0: none)
  nlohmann::ordered_json plan_summary;  // --profile: what the plan predicted, for the report
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
               c.mixed.profile_path, p.plan.weight_bytes, 100.0 * p.plan.fraction_of_dense_fp16,
               p.plan.predicted_bits_per_byte, p.plan.predicted_increase_percent);
  c.options.config_path = c.mixed.profile_path + " (mixed precision)";
  c.options.config_text = p.config_toml;
  c.plan_summary = {{"profile", c.mixed.profile_path},
                    {"target", p.target},
                    {"method", p.method},
                    {"planned_weight_bytes", p.plan.weight_bytes},
                    {"predicted_calibration_bits_per_byte", p.plan.predicted_bits_per_byte},
                    {"calibration_base_bits_per_byte", p.profile.base_bits_per_byte},
                    {"predicted_increase_pct", p.plan.predicted_increase_percent}};
}

// --profile: the compressed file scored on held-out text against the input model, beside the
// prediction, logged and added to the report as "mixed_precision". The held-out range is the
// bundled text's (byte 1,000,000 on), never calibrated on; without --interleave-zeros, so the
// tiny v6 model scores as fed.
void report_held_out_result(const CompressCommand& c) {
  nlohmann::ordered_json summary = c.plan_summary;
  if (c.heldout_bytes > 0) {
    tools::ModelArgs args;
    args.path = c.options.output_path;
    args.threads = c.options.threads;
    tools::RunnableModel model = args.load_runnable(RuntimeOptions{});
    const auto tokenizer = tokenizer_for(model.vocab, "");
    tools::TextArgs text;
    text.max_bytes = c.heldout_bytes;
    const auto ev = tools::evaluate_on_text(args, model, *tokenizer, text, c.options.model_path);
    const double bpb = ev["bits_per_byte"].get<double>(), dense = ev["reference_bits_per_byte"].get<double>();
    summary["held_out"] = {{"text_offset", ev["text_offset"]},
                           {"text_bytes", ev["text_bytes"]},
                           {"bits_per_byte", bpb},
                           {"dense_bits_per_byte", dense},
                           {"increase_pct", 100.0 * (bpb / dense - 1.0)},
                           {"top1_agreement", ev["top1_agreement"]},
                           {"peak_resident_weight_bytes", ev["peak_resident_weight_bytes"]}};
    spdlog::info("held-out ({} bytes from {}): {:.5f} bits/byte against {:.5f} dense ({:+.2f}%; predicted {:+.2f}% on "
                 "calibration text), {} resident weight bytes",
                 ev["text_bytes"].get<uint64_t>(), ev["text_offset"].get<uint64_t>(), bpb, dense,
                 100.0 * (bpb / dense - 1.0), summary["predicted_increase_pct"].get<double>(),
                 ev["peak_resident_weight_bytes"].get<int64_t>());
  }
  const std::string report_path =
      c.options.report_path.empty() ? c.options.output_path + ".report.json" : c.options.report_path;
  nlohmann::ordered_json report = read_json_report(report_path, "compress report");
  report["mixed_precision"] = summary;
  tools::write_json(report_path, report);
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
    const int rc = run_compress(c.options, builtin_passes());
    if (rc == 0 && !c.mixed.profile_path.empty() && !c.options.dry_run) report_held_out_result(c);
    return rc;
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
  cmd->add_option("--method", c->mixed.method,
                  "With --profile: rtn, or gptq where calibration statistics exist (default: the profile's method)")
      ->check(CLI::IsMember({"rtn", "gptq"}));
  cmd->add_option("--heldout-bytes", c->heldout_bytes,
                  "With --profile: score the result on this many held-out bytes of the bundled text against MODEL "
                  "(0: skip); added to the report as mixed_precision")
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
