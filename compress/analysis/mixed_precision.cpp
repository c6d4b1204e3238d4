#include "compress/analysis/mixed_precision.h"

#include <sstream>

#include "compress/passes/quantize_pass.h"
#include "runtime/core/error.h"
#include "runtime/plan/budget_planner.h"

namespace rwkvlite {
namespace {

std::vector<PlanItem> plan_items(const SensitivityProfile& profile) {
  std::vector<PlanItem> items;
  for (const auto& t : profile.tensors) {
    PlanItem item{.name = t.name, .choices = {}};
    for (const auto& c : t.costs) item.choices.push_back({c.encoding, c.bytes, c.cost});
    items.push_back(std::move(item));
  }
  return items;
}

MixedPrecisionPlan to_mixed_precision(const SensitivityProfile& profile, const Plan& plan) {
  MixedPrecisionPlan m;
  m.feasible = plan.feasible;
  for (size_t i = 0; i < profile.tensors.size(); ++i) {
    const auto& t = profile.tensors[i];
    const auto& c = t.costs[static_cast<size_t>(plan.chosen[i])];
    m.tensors.push_back({t.name, c.encoding, c.bytes, c.cost});
  }
  m.profiled_bytes = plan.bytes;
  m.weight_bytes = plan.bytes + profile.fixed_bytes;
  m.predicted_delta_bits_per_byte = plan.cost;
  m.predicted_bits_per_byte = profile.base_bits_per_byte + plan.cost;
  m.predicted_increase_percent = 100.0 * plan.cost / profile.base_bits_per_byte;
  m.fraction_of_dense_fp16 = static_cast<double>(m.weight_bytes) / static_cast<double>(profile.dense_fp16_bytes);
  return m;
}

}  // namespace

MixedPrecisionPlan plan_for_bytes(const SensitivityProfile& profile, int64_t target_bytes) {
  if (target_bytes <= 0) throw UsageError("mixed precision: the byte target must be positive");
  return to_mixed_precision(profile, plan_within_bytes(plan_items(profile), target_bytes - profile.fixed_bytes));
}

MixedPrecisionPlan plan_for_loss(const SensitivityProfile& profile, double max_increase_percent) {
  if (!(max_increase_percent >= 0)) throw UsageError("mixed precision: the loss limit must be >= 0 percent");
  const double max_cost = profile.base_bits_per_byte * max_increase_percent / 100.0;
  return to_mixed_precision(profile, plan_within_cost(plan_items(profile), max_cost));
}

std::string mixed_precision_config_toml(const MixedPrecisionPlan& plan, const std::vector<std::string>& comment,
                                        bool gptq) {
  std::ostringstream out;
  for (const auto& line : comment) out << "# " << line << "\n";
  if (gptq) out << "\n[calibration]\ntext = \"bundled\"\noffset = 0\nbytes = 200000\nseed = 1234\n";
  out << "\n[[pass]]\ntype = \"quantize\"\n";
  for (const auto& t : plan.tensors) {
    out << "\n[[pass.rules]]\ntargets = [\"" << t.tensor << "\"]\nencoding = \"" << t.encoding << "\"\n";
    if (gptq && t.encoding.front() == 'i' && has_input_statistics(t.tensor)) out << "method = \"gptq\"\n";
  }
  return out.str();
}

}  // namespace rwkvlite
