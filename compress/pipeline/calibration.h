// Calibration: runs the dense model over calibration text and records what passes need.
//
// Input statistics are gathered without touching the engine's math: every projection slot
// whose weight a pass asked about is wrapped in a recording projection that accumulates the
// second moment E[x xᵀ] of its inputs and then applies the original matrix unchanged.
#pragma once

#include <set>
#include <string>

#include "runtime/core/model.h"
#include "compress/pipeline/pass.h"

namespace rwkvlite {

struct CalibrationRequest {
  std::string text;                  // the calibration bytes (byte-level) or text (tokenized)
  std::set<std::string> projections; // canonical weight names whose input moments are wanted
  int64_t max_samples = 16384;       // rows of sampled activations kept per layer (>= 1)
  int threads = 1;
};

// Deterministic for any thread count: accumulation happens in token order on one thread.
CalibrationData run_calibration(const Model& model, const CalibrationRequest& request);

}  // namespace rwkvlite
