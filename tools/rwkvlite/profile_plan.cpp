#include "tools/rwkvlite/profile_plan.h"

#include <spdlog/spdlog.h>

#include "compress/analysis/sensitivity_json.h"
#include "tools/rwkvlite/check_gate.h"
#include "tools/rwkvlite/cli_common.h"

namespace rwkvlite::cli {

std::string ProfilePlan::infeasible_message() const {
  if (budget_bytes > 0)
    return "the budget is below the smallest encodings' " + std::to_string(plan.weight_bytes) + " bytes";
  return "no assignment of the profiled encodings is predicted within the loss limit (" +
         std::to_string(plan.weight_bytes) + " bytes at the lowest predicted cost)";
}

ProfilePlan plan_from_profile(const ProfilePlanRequest& r) {
  ProfilePlan p;
  p.profile_json = read_json_report(r.profile_path, "profile");
  p.profile = profile_from_json(p.profile_json);
  if (!r.memory_budget.empty()) {
    p.budget_bytes = parse_byte_budget(r.memory_budget, p.profile.dense_fp16_bytes, r.budget_option);
    p.plan = plan_for_bytes(p.profile, p.budget_bytes);
    p.target = r.budget_option + " " + r.memory_budget;
  } else {
    p.plan = plan_for_loss(p.profile, r.max_bpb_increase);
    p.target = "--max-bpb-increase " + std::to_string(r.max_bpb_increase);
  }
  // The config quantizes as the profile measured unless told otherwise: a mismatch makes the
  // prediction pessimistic (rtn profile, gptq config) or optimistic (the reverse), and with
  // low-rank fidelities it skews the choice between them and quantization.
  p.method = r.method.empty() ? p.profile.method : r.method;
  if (p.method != p.profile.method)
    spdlog::warn("the profile's costs were measured with {} and the config will use {}: predictions are {}; "
                 "profile with --method {} to plan for it",
                 p.profile.method, p.method, p.method == "gptq" ? "pessimistic" : "optimistic", p.method);
  const auto& j = p.profile_json;
  const std::vector<std::string> comment = {
      "Profile: " + j.value("model", std::string("(model not recorded)")) + ", " + p.profile.mode + " mode, " + p.profile.method + " costs, " +
          std::to_string(p.profile.tokens_scored) + " calibration tokens from " +
          j.value("calibration_text", std::string("?")) + " at byte " +
          std::to_string(j.value("calibration_offset", uint64_t{0})) + ".",
      "Mixed precision chosen from " + r.profile_path + " for " + p.target + " --method " + p.method + ":",
      std::to_string(p.plan.weight_bytes) + " weight bytes, predicted " + std::to_string(p.plan.predicted_bits_per_byte) +
          " bits/byte on the profile's calibration text (base " + std::to_string(p.profile.base_bits_per_byte) + ")."};
  p.config_toml = mixed_precision_config_toml(p.plan, comment, p.method == "gptq");
  return p;
}

}  // namespace rwkvlite::cli
