// rwkvlite plan PROFILE (--memory-budget B | --max-bpb-increase PCT) [--json FILE]
//                       [--emit-config FILE.toml]
// rwkvlite plan ELASTIC.rwkvlite --memory-budget B [stream options] (tools/rwkvlite/elastic_plan.h)
//
// from a sensitivity profile (`rwkvlite profile --json`), the encoding of each weight matrix
// that gives the lowest predicted bits per byte within a weight-memory budget (bytes, or a
// percentage of the dense FP16 weight bytes), or the fewest bytes within a predicted loss.
// Prints per layer the encodings, resident bytes and predicted cost; --emit-config writes the
// choice as a compress config (one quantize rule per tensor). Exit 2 when the target cannot be
// met (the plan closest to it is still printed, and no config is written).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>

#include "compress/analysis/mixed_precision.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/format/layout.h"
#include "runtime/store/compact_model.h"
#include "tools/common/json_output.h"
#include "tools/rwkvlite/cli_common.h"
#include "tools/rwkvlite/commands.h"
#include "tools/rwkvlite/elastic_plan.h"
#include "tools/rwkvlite/profile_plan.h"

namespace rwkvlite::cli {
namespace {

using nlohmann::ordered_json;

struct PlanCommand {
  std::string profile_path;
  std::string memory_budget;
  double max_bpb_increase = -1;  // percent; < 0: not given
  std::string json_path;
  std::string config_path;
  std::string method;  // "" = the profile's
  tools::BudgetArgs stream;  // an elastic file's streaming options (its memory_budget unused)
  int threads = 2;
};

// "layer 3", "embedding" or "head": the rows of the per-layer table.
std::string group_of(const std::string& tensor) {
  if (const auto layer = layout::layer_index(tensor)) return "layer " + std::to_string(*layer);
  return component_of(tensor);
}

ordered_json plan_report(const PlanCommand& c, const SensitivityProfile& p, const MixedPrecisionPlan& m,
                         int64_t budget) {
  ordered_json j;
  j["profile"] = c.profile_path;
  j["target"] = budget > 0 ? "memory_budget" : "max_bpb_increase";
  j["memory_budget_bytes"] = budget > 0 ? ordered_json(budget) : ordered_json(nullptr);
  j["max_bpb_increase_pct"] = budget > 0 ? ordered_json(nullptr) : ordered_json(c.max_bpb_increase);
  j["feasible"] = m.feasible;
  j["weight_bytes"] = m.weight_bytes;
  j["fixed_bytes"] = p.fixed_bytes;
  j["dense_fp16_bytes"] = p.dense_fp16_bytes;
  j["fraction_of_dense_fp16"] = m.fraction_of_dense_fp16;
  j["base_bits_per_byte"] = p.base_bits_per_byte;
  j["predicted_bits_per_byte"] = m.predicted_bits_per_byte;
  j["predicted_increase_pct"] = m.predicted_increase_percent;
  ordered_json tensors = ordered_json::array();
  for (const auto& t : m.tensors)
    tensors.push_back({{"tensor", t.tensor}, {"encoding", t.encoding}, {"bytes", t.bytes},
                       {"predicted_delta_bits_per_byte", t.predicted_delta_bits_per_byte}});
  j["tensors"] = tensors;
  return j;
}

void print_plan(const ordered_json& j, const MixedPrecisionPlan& m, std::FILE* out) {
  std::fprintf(out, "%s: %s weights, %.1f%% of dense FP16, predicted %.5f bits/byte (%+.2f%%)%s\n",
               j["target"].get<std::string>().c_str(), human_bytes(static_cast<double>(m.weight_bytes)).c_str(),
               100.0 * m.fraction_of_dense_fp16, m.predicted_bits_per_byte, m.predicted_increase_percent,
               m.feasible ? "" : "  (target NOT met)");
  // Per group: bytes, cost, and each encoding's count.
  struct Group {
    int64_t bytes = 0;
    double cost = 0;
    std::map<std::string, int> encodings;
  };
  std::map<std::string, Group> groups;
  std::vector<std::string> order;
  for (const auto& t : m.tensors) {
    const std::string g = group_of(t.tensor);
    if (!groups.count(g)) order.push_back(g);
    groups[g].bytes += t.bytes;
    groups[g].cost += t.predicted_delta_bits_per_byte;
    groups[g].encodings[t.encoding]++;
  }
  std::fprintf(out, "%-12s %12s %14s  %s\n", "part", "bytes", "delta bits/B", "encodings");
  for (const auto& name : order) {
    const Group& g = groups[name];
    std::string encodings;
    for (const auto& [e, n] : g.encodings) encodings += (encodings.empty() ? "" : ", ") + std::to_string(n) + "x " + e;
    std::fprintf(out, "%-12s %12lld %14.5f  %s\n", name.c_str(), static_cast<long long>(g.bytes), g.cost,
                 encodings.c_str());
  }
  std::fprintf(out, "%-12s %12lld %14s  (norms, mixes, decays: FP32)\n", "fixed",
               static_cast<long long>(j["fixed_bytes"].get<int64_t>()), "");
}

int run_plan(const PlanCommand& c) {
  const ProfilePlan p = plan_from_profile(
      {.profile_path = c.profile_path, .memory_budget = c.memory_budget, .max_bpb_increase = c.max_bpb_increase,
       .method = c.method});
  const ordered_json report = plan_report(c, p.profile, p.plan, p.budget_bytes);
  if (c.json_path != "-") print_plan(report, p.plan, stdout);
  if (!c.json_path.empty()) tools::write_json(c.json_path, report);
  if (!p.plan.feasible) {
    spdlog::error("{}{}", p.infeasible_message(), c.config_path.empty() ? "" : "; no config written");
    return 2;
  }
  if (!c.config_path.empty()) {
    write_file_atomically(c.config_path, p.config_toml);
    spdlog::info("wrote {}", c.config_path);
  }
  return 0;
}

}  // namespace

void register_plan(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "plan", "Choose each weight matrix's encoding for a memory budget or a loss limit, from a sensitivity profile");
  auto c = std::make_shared<PlanCommand>();
  cmd->add_option("profile", c->profile_path,
                  "Sensitivity profile JSON (rwkvlite profile --json), or an elastic compact file (the elastic "
                  "pass): the plan rwkvlite-run would run it with at --memory-budget, and its predicted speed")
      ->required()
      ->check(CLI::ExistingFile);
  auto* budget = cmd->add_option("--memory-budget", c->memory_budget,
                                 "Weight bytes to fit (2500000, 2.5MB, 64MiB) or a percentage of dense FP16 (20%)");
  auto* loss = cmd->add_option("--max-bpb-increase", c->max_bpb_increase,
                               "Fewest bytes whose predicted bits per byte rise at most this many percent")
                   ->check(CLI::NonNegativeNumber);
  budget->excludes(loss);
  cmd->add_option("--json", c->json_path, "Write the plan as JSON to this file ('-': the JSON alone on stdout)");
  cmd->add_option("--emit-config", c->config_path, "Write the chosen encodings as a compress config (TOML)");
  cmd->add_option("--method", c->method,
                  "Quantization of the emitted config: rtn, or gptq where calibration statistics exist "
                  "(the config then calibrates); default: the method the profile measured")
      ->check(CLI::IsMember({"rtn", "gptq"}));
  c->stream.add_stream_options_to(*cmd);
  cmd->add_option("--threads", c->threads, "Elastic files: threads the predicted speed is measured with")
      ->check(CLI::Range(1, 256));
  cmd->callback([&action, c, budget, loss] {
    if (budget->count() == 0 && loss->count() == 0)
      throw CLI::ValidationError("plan", "give --memory-budget or --max-bpb-increase");
    action = [c] {
      if (!is_compact_file(c->profile_path)) return run_plan(*c);
      if (!c->config_path.empty() || !c->method.empty() || c->max_bpb_increase >= 0)
        throw UsageError("--emit-config, --method and --max-bpb-increase plan from a sensitivity profile; '" +
                         c->profile_path + "' is a compact file (give --memory-budget)");
      c->stream.memory_budget = c->memory_budget;
      return run_elastic_plan(c->profile_path, c->stream, c->threads, c->json_path);
    };
  });
}

}  // namespace rwkvlite::cli
