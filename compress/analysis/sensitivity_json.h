// The sensitivity profile as JSON: what `rwkvlite profile --json` writes and `rwkvlite plan`
// and `rwkvlite compress --profile` read back. Schema (docs/mixed-precision.md, "JSON keys"):
//   {"schema": "rwkvlite.sensitivity/1", "mode", "method", "fidelities", "probe", "tokens_scored",
//    "base_bits_per_byte", "profiled_parameters", "fixed_bytes", "dense_fp16_bytes",
//    "evaluations", "seconds", "proxy_spearman_all", "proxy_spearman_per_fidelity": {f: rho},
//    "tensors": [{"name", "rows", "cols", "costs": [{"encoding", "available", "bytes", "relative_error", "output_error",
//                 "cost", "measured", "proxy_cost", "direct_cost", "delta_bits_per_byte"}]}]}
// cost is KL bits per byte (sensitivity_profile.h).
// Optional values are null when absent; "available" false marks a fidelity that does not apply
// to that tensor (a low-rank one), and is taken as true when missing (older profiles).
#pragma once

#include <nlohmann/json.hpp>

#include "compress/analysis/sensitivity_profile.h"

namespace rwkvlite {

nlohmann::ordered_json profile_to_json(const SensitivityProfile& profile);

// InputError naming the first missing or ill-typed field (as a JSON path), a schema other than
// rwkvlite.sensitivity/1, a tensor whose costs do not follow "fidelities", or a negative size.
SensitivityProfile profile_from_json(const nlohmann::ordered_json& j);

}  // namespace rwkvlite
