#include "compress/analysis/mixed_precision.h"

#include <map>
#include <sstream>

#include "compress/passes/quantize_pass.h"
#include "runtime/core/error.h"
#include "runtime/format/layout.h"
#include "runtime/plan/budget_planner.h"

namespace rwkvlite {
namespace {

// ["a", "b"] as a TOML array of strings.
std::string toml_string_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", \"" : "\"") + items[i] + "\"";
  return out + "]";
}

// The planner's items: per tensor, the fidelities that apply to it. cost_index[i][k] is the
// profile cost behind item i's choice k.
struct PlanInput {
  std::vector<PlanItem> items;
  std::vector<std::vector<size_t>> cost_index;
};

PlanInput plan_input(const SensitivityProfile& profile) {
  PlanInput in;
  for (const auto& t : profile.tensors) {
    PlanItem item{.name = t.name, .choices = {}};
    std::vector<size_t> index;
    for (size_t k = 0; k < t.costs.size(); ++k) {
      const auto& c = t.costs[k];
      if (!c.available) continue;
      item.choices.push_back({c.encoding, c.bytes, c.cost});
      index.push_back(k);
    }
    if (item.choices.empty())
      throw UsageError("mixed precision: no fidelity of the profile applies to " + t.name +
                       " (profile at least one quantize encoding)");
    in.items.push_back(std::move(item));
    in.cost_index.push_back(std::move(index));
  }
  return in;
}

MixedPrecisionPlan to_mixed_precision(const SensitivityProfile& profile, const PlanInput& in, const Plan& plan) {
  MixedPrecisionPlan m;
  m.feasible = plan.feasible;
  for (size_t i = 0; i < profile.tensors.size(); ++i) {
    const auto& t = profile.tensors[i];
    const auto& c = t.costs[in.cost_index[i][static_cast<size_t>(plan.chosen[i])]];
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
  const PlanInput in = plan_input(profile);
  return to_mixed_precision(profile, in, plan_within_bytes(in.items, target_bytes - profile.fixed_bytes));
}

MixedPrecisionPlan plan_for_loss(const SensitivityProfile& profile, double max_increase_percent) {
  if (!(max_increase_percent >= 0)) throw UsageError("mixed precision: the loss limit must be >= 0 percent");
  const double max_cost = profile.base_bits_per_byte * max_increase_percent / 100.0;
  const PlanInput in = plan_input(profile);
  return to_mixed_precision(profile, in, plan_within_cost(in.items, max_cost));
}

CalibrationConfig mixed_precision_calibration() {
  CalibrationConfig c;
  c.text = "bundled";
  c.text_path = "bundled";
  c.offset = 0;
  c.bytes = 200000;
  c.seed = 1234;
  return c;
}

std::string mixed_precision_config_toml(const MixedPrecisionPlan& plan, const std::vector<std::string>& comment,
                                        bool gptq) {
  std::ostringstream out;
  for (const auto& line : comment) out << "# " << line << "\n";
  if (gptq) {
    const CalibrationConfig c = mixed_precision_calibration();
    out << "\n[calibration]\ntext = \"" << c.text << "\"\noffset = " << c.offset << "\nbytes = " << c.bytes
        << "\nseed = " << c.seed << "\n";
  }
  // Tensors planned at a low-rank fidelity: a lowrank pass per rank (in order of rank), before
  // the quantize pass that encodes their factors. The profile measured plain SVD; with
  // calibration, the matrices whose input it records are whitened by its moments (SVD-LLM),
  // which minimises their output error instead of the weight error, in a pass of their own.
  std::map<std::pair<int, bool>, std::vector<std::string>> passes;  // (rank, activation-aware)
  for (const auto& t : plan.tensors) {
    if (const auto lr = parse_lowrank_fidelity(t.encoding))
      passes[{lr->rank, gptq && has_input_statistics(t.tensor)}].push_back(t.tensor);
  }
  for (const auto& [key, tensors] : passes) {
    out << "\n[[pass]]\ntype = \"lowrank\"\ntargets = " << toml_string_array(tensors) << "\nrank = " << key.first
        << "\n";
    if (key.second) out << "activation_aware = true\n";
  }
  auto rule = [&](const std::vector<std::string>& targets, const std::string& encoding, bool calibrated) {
    out << "\n[[pass.rules]]\ntargets = " << toml_string_array(targets) << "\nencoding = \"" << encoding << "\"\n";
    if (gptq && encoding.front() == 'i' && calibrated) out << "method = \"gptq\"\n";
  };
  out << "\n[[pass]]\ntype = \"quantize\"\n";
  for (const auto& t : plan.tensors) {
    if (const auto lr = parse_lowrank_fidelity(t.encoding)) {
      const std::string base = layout::matrix_base(t.tensor);
      rule({layout::lowrank_a(base), layout::lowrank_b(base)}, lr->factor_encoding,
           has_input_statistics(layout::lowrank_a(base)));
    } else {
      rule({t.tensor}, t.encoding, has_input_statistics(t.tensor));
    }
  }
  return out.str();
}

}  // namespace rwkvlite
