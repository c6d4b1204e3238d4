// Mixed precision from the sensitivity profile: one encoding per profiled tensor, chosen by the
// budget planner (runtime/plan/budget_planner.h) over the profile's measured or proxied costs,
// for a byte target ("the best model in N bytes") or a loss limit ("the smallest model within
// this loss"). Predicted costs add the tensors' single-tensor costs, which ignores how errors
// in several tensors interact; `rwkvlite plan` and compress report the measured result beside
// the prediction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compress/analysis/sensitivity_profile.h"
#include "compress/pipeline/config.h"

namespace rwkvlite {

struct PrecisionChoice {
  std::string tensor;
  std::string encoding;
  int64_t bytes = 0;
  double predicted_delta_bits_per_byte = 0;
};

struct MixedPrecisionPlan {
  bool feasible = false;
  std::vector<PrecisionChoice> tensors;      // profile order
  int64_t profiled_bytes = 0;                // sum of the chosen encodings' bytes
  int64_t weight_bytes = 0;                  // profiled_bytes + the profile's fixed (FP32) bytes
  double predicted_delta_bits_per_byte = 0;  // sum of the chosen costs
  double predicted_bits_per_byte = 0;        // base + delta, on the profile's calibration text
  double predicted_increase_percent = 0;     // 100 * delta / base
  double fraction_of_dense_fp16 = 0;         // weight_bytes / the profile's dense_fp16_bytes
};

// The smallest predicted cost with weight_bytes <= target_bytes (fixed bytes included).
MixedPrecisionPlan plan_for_bytes(const SensitivityProfile& profile, int64_t target_bytes);
// The fewest bytes with a predicted rise of at most max_increase_percent % of the base bits per byte.
MixedPrecisionPlan plan_for_loss(const SensitivityProfile& profile, double max_increase_percent);

// The calibration of gptq configs that mixed_precision_config_toml writes, which gptq profiles
// (`rwkvlite profile --method gptq`) calibrate on too: bytes [0, 200000) of the bundled text.
CalibrationConfig mixed_precision_calibration();

// A compress config holding one quantize pass with one rule per tensor (exact names) and the
// chosen encodings (tensors planned at a low-rank fidelity: a lowrank pass per rank first, and
// quantize rules for their factors), preceded by `comment` lines (each prefixed "# "). With `gptq`, integer
// encodings of tensors that have input statistics (has_input_statistics) use GPTQ error
// compensation, matrices planned at a low rank are whitened by their input moments, and the
// config calibrates on mixed_precision_calibration(). The prediction holds for the config when
// the profile was measured with the same method (SensitivityProfile::method).
std::string mixed_precision_config_toml(const MixedPrecisionPlan& plan, const std::vector<std::string>& comment,
                                        bool gptq = false);

}  // namespace rwkvlite
