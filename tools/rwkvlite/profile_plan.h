// A mixed-precision plan from a sensitivity profile file, as `rwkvlite plan` and
// `rwkvlite compress --profile` both make it: the profile read and checked, the target parsed,
// the plan, and the compress config that holds it (with a comment saying where it came from).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "compress/analysis/mixed_precision.h"

namespace rwkvlite::cli {

struct ProfilePlanRequest {
  std::string profile_path;
  std::string memory_budget;     // bytes or P% of dense FP16 ("" when planning for a loss)
  double max_bpb_increase = -1;  // percent, used when memory_budget is ""
  std::string method;            // of the config: rtn or gptq; "" = the profile's
  std::string budget_option = "--memory-budget";  // how the caller spells it, for messages
};

struct ProfilePlan {
  nlohmann::ordered_json profile_json;
  SensitivityProfile profile;
  MixedPrecisionPlan plan;
  int64_t budget_bytes = 0;  // 0 when planning for a loss
  std::string method;        // of the config, resolved
  std::string target;        // the target option as given: "--target-bytes 20%", "--max-bpb-increase 1.000000"
  std::string config_toml;
  // The error to give when !plan.feasible.
  std::string infeasible_message() const;
};

// UsageError for an unreadable or non-JSON file or a bad budget; InputError for a profile that
// is not one.
ProfilePlan plan_from_profile(const ProfilePlanRequest& request);

}  // namespace rwkvlite::cli
