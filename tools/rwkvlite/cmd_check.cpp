// rwkvlite check REPORT --baseline BASELINE [--thresholds FILE] [--max-*/--min-* limits]:
// the accuracy and memory regression gate. Compares two evaluation reports (rwkvlite eval
// --json, rwkvlite-run --json), prints one row per limit, and when a limit breaks names the
// tensors whose measured compression error grew most (from the two compress reports).
// Exit 0 all limits hold, 4 a limit broke, 2 a report, thresholds file or limit is unusable.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>

#include "runtime/core/error.h"
#include "tools/common/json_output.h"
#include "tools/rwkvlite/check_blame.h"
#include "tools/rwkvlite/check_gate.h"
#include "tools/rwkvlite/check_thresholds.h"
#include "tools/rwkvlite/commands.h"

namespace rwkvlite::cli {

namespace {

struct CheckCommand {
  std::string report_path, baseline_path, thresholds_path;
  ThresholdFlags flags;
  std::string compress_report_path, baseline_compress_report_path;  // "" for the default
  size_t blame_top = 5;
  std::string json_path;
};

// A compress report: the one given (which must be readable), else MODEL.report.json beside
// the model the evaluation report names, when that file exists. `missing` says why not.
std::optional<nlohmann::ordered_json> find_compress_report(const std::string& given, const nlohmann::ordered_json& eval,
                                                           const std::string& what, const char* flag,
                                                           std::string& path, std::string& missing) {
  if (!given.empty()) {
    path = given;
    return read_json_report(given, what);
  }
  if (eval.contains("model") && eval["model"].is_string()) {
    path = eval["model"].get<std::string>() + ".report.json";
    if (std::filesystem::is_regular_file(path)) return read_json_report(path, what);
    missing = "no " + what + " ('" + path + "' does not exist; give " + flag + ")";
  } else {
    missing = "no " + what + " (give " + flag + ")";
  }
  return std::nullopt;
}

int run_check(const CheckCommand& c) {
  const auto current = read_json_report(c.report_path, "report");
  const auto baseline = read_json_report(c.baseline_path, "baseline");
  const Thresholds thresholds = c.flags.apply(c.thresholds_path.empty() ? Thresholds{} : load_thresholds(c.thresholds_path));

  // Read before the verdict, so an unusable compress report is exit 2 whatever the verdict.
  std::string current_cr_path, baseline_cr_path, current_missing, baseline_missing;
  const auto current_cr = find_compress_report(c.compress_report_path, current, "compress report",
                                               "--compress-report", current_cr_path, current_missing);
  const auto baseline_cr = find_compress_report(c.baseline_compress_report_path, baseline, "baseline compress report",
                                                "--baseline-compress-report", baseline_cr_path, baseline_missing);
  const std::string missing =
      current_missing + (current_missing.empty() || baseline_missing.empty() ? "" : "; ") + baseline_missing;

  std::optional<Blame> blame;  // computed (and so checked) always, shown only on a failure
  if (current_cr && baseline_cr) blame = blame_tensors(*baseline_cr, baseline_cr_path, *current_cr, current_cr_path);
  const GateVerdict verdict = evaluate_gate(baseline, c.baseline_path, current, c.report_path, thresholds);
  if (verdict.passed()) blame.reset();

  if (c.json_path != "-") {
    print_gate_table(verdict, stdout);
    if (blame) {
      print_blame(*blame, c.blame_top, stdout);
    } else if (!verdict.passed()) {
      std::printf("blame: %s\n", missing.c_str());
    }
  }
  if (!c.json_path.empty()) {
    nlohmann::ordered_json j = gate_json(verdict);
    j["blame"] = blame ? blame_json(*blame, c.blame_top) : nlohmann::ordered_json(nullptr);
    if (!verdict.passed() && !blame) j["blame_unavailable"] = missing;
    tools::write_json(c.json_path, j);
  }
  if (verdict.passed()) return kExitOk;
  std::string names;
  for (const std::string& m : verdict.failed_metrics()) names += (names.empty() ? "" : ", ") + m;
  spdlog::error("check failed: '{}' regressed against '{}' on {}", c.report_path, c.baseline_path, names);
  return kExitGateFailed;
}

}  // namespace

void register_check(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("check", "Gate an evaluation report against a baseline report (exit 4 on a regression)");
  auto c = std::make_shared<CheckCommand>();
  cmd->add_option("report", c->report_path, "Evaluation report (rwkvlite eval --json, rwkvlite-run --json)")->required();
  cmd->add_option("--baseline", c->baseline_path, "Baseline evaluation report to compare with")->required();
  cmd->add_option("--thresholds", c->thresholds_path, "Limits file (TOML, one table per metric; configs/regression/)");
  c->flags.add_to(*cmd);
  cmd->add_option("--compress-report", c->compress_report_path,
                  "Compress report of the current model (default: REPORT's model + .report.json, when it exists)");
  cmd->add_option("--baseline-compress-report", c->baseline_compress_report_path,
                  "Compress report of the baseline model (default: BASELINE's model + .report.json, when it exists)");
  cmd->add_option("--blame-top", c->blame_top, "How many tensors the blame lists")->capture_default_str()->check(
      CLI::PositiveNumber);
  cmd->add_option("--json", c->json_path, "Also write the verdict as JSON to this file ('-': the JSON alone on stdout)")->check(tools::output_file());
  cmd->callback([&action, c] { action = [c] { return run_check(*c); }; });
}

}  // namespace rwkvlite::cli
