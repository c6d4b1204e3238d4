// A compression pass: one named step over the CompressedModel, configured by a [[pass]] table
// of the TOML config, validated before any work starts, reporting one row per tensor it touched.
#pragma once

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compress/pipeline/compressed_model.h"

namespace rwkvlite {

// What calibration measured on the dense model (filled by compress/pipeline/calibration).
struct CalibrationData {
  int64_t tokens = 0;
  // Second moment E[x xᵀ] of the input of every dense projection, keyed by the weight's
  // canonical name ("blocks.3.att.key.weight"); in double for a stable Cholesky.
  std::map<std::string, Eigen::MatrixXd> input_second_moment;

  // Sampled activations for training predictors, at the same token positions for every layer:
  // every `sample_stride`-th token, at most CalibrationRequest::max_samples rows. Row-major
  // float matrices, one row per sampled token.
  using Rows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  int64_t sample_stride = 1;
  std::vector<Rows> ffn_key_inputs;  // per layer: x_k, the input of the channel-mix key (N x D)
  Rows head_inputs;                  // the head's input, the final hidden state after ln_out (N x D)
  // Per layer, the fraction of (token, neuron) pairs with relu(K x_k) > 0 over all tokens:
  // the true channel-mix activity that a sparsity predictor has to find.
  std::vector<double> ffn_active_fraction;
};

// One row of the per-tensor report (printed on stderr and written into the JSON report).
struct PassReportRow {
  std::string tensor;
  std::string action;              // "lowrank r=8", "encode i8", ...
  int64_t bytes_before = 0, bytes_after = 0;
  double error = 0;                // pass-defined relative error (documented by the pass)
  double seconds = 0;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

struct PassContext {
  CompressedModel& model;
  const CalibrationData* calibration = nullptr;  // null when the pipeline ran none
  uint64_t seed = 0;
  int threads = 1;
  std::function<void(const PassReportRow&)> on_row;  // progress: called as each row completes
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  virtual bool needs_calibration() const { return false; }
  // Checks the pass applies to this model (targets match, shapes fit) before any pass runs.
  virtual void validate(const CompressedModel& model) const = 0;
  // Planned bytes after the pass, without doing the work (for --dry-run).
  virtual int64_t planned_bytes_delta(const CompressedModel& model) const = 0;
  virtual std::vector<PassReportRow> run(PassContext& ctx) = 0;
  // The pass's resolved settings, recorded in the output file and the report.
  virtual nlohmann::ordered_json settings() const = 0;
};

}  // namespace rwkvlite
