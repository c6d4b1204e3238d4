// A compression pass: one named step over the CompressedModel, configured by a [[pass]] table
// of the TOML config, validated and planned before any work starts, reporting one row per
// tensor it touched. Its settings in the file are the resolved [[pass]] table (PassSpec::settings).
#pragma once

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
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

// One row of the per-tensor report (logged as it completes and written into the JSON report).
// A row states only what the pass measured: `value` under the name `metric` when it measured
// one, `seconds` when it timed the row.
struct PassReportRow {
  std::string tensor;
  std::vector<int64_t> shape;      // of the tensor the row is about, as the pass found it
  std::string encoding_before;     // storage encodings before and after ("" when not one tensor's)
  std::string encoding_after;
  std::string action;              // "lowrank r=8", "encode i8", ...
  int64_t bytes_before = 0, bytes_after = 0;
  std::string metric;              // what `value` is: "rel_err", "recall", "kl" (documented by the pass)
  std::optional<double> value;     // set only when measured
  std::optional<double> seconds;   // set only when timed
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

// The dry run's view of a compression: the model as names, shapes and encodings only
// (CompressedModel::shapes_only(), no values), which each pass changes as its run would, in
// pipeline order, so a pass plans against what the passes before it leave.
struct CompressPlan {
  CompressedModel model;
  // What a pass cannot know before doing its work (e.g. ranks chosen from singular values);
  // non-empty means the planned sizes are not the sizes that will be written.
  std::vector<std::string> unknowns;
  // Bytes the file header may exceed its estimate by: numbers measured during the run that
  // the plan holds as placeholders (0), each up to kMaxJsonNumberChars long.
  int64_t header_slack_bytes = 0;
  // Likely mistakes found while planning (a quantize rule matching no tensor), logged as warnings.
  std::vector<std::string> warnings;
};

// The longest text nlohmann::json writes for a double (sign, 17 digits, point, exponent).
constexpr int64_t kMaxJsonNumberChars = 24;

struct PassContext {
  CompressedModel& model;
  const CalibrationData* calibration = nullptr;  // null when the pipeline ran none
  uint64_t seed = 0;
  int threads = 1;
  // Progress: on_start(n) once the pass knows it will report n rows; on_row as each row
  // completes, in report order (possibly from a worker thread, never two at once).
  std::function<void(int64_t rows)> on_start;
  std::function<void(const PassReportRow&)> on_row;
};

// The parts of CalibrationData a pass's run() reads. The pipeline frees each part once the last
// pass that reads it is done: the sampled activations are 0.6 GB and the input moments 0.23 GB
// at the 0.1B shape, and holding them through passes that never look at them is most of
// compress's peak memory.
struct CalibrationUse {
  bool input_moments = false;
  bool ffn_key_inputs = false;
  bool head_inputs = false;
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual bool needs_calibration() const { return false; }
  // By default a pass that needs calibration may read all of it; passes that know better say so.
  virtual CalibrationUse calibration_use() const {
    const bool all = needs_calibration();
    return {all, all, all};
  }
  // Checks the pass applies to this model (targets match, shapes fit); called on the plan
  // before any pass runs, and again by run() on the model as earlier passes left it.
  virtual void validate(const CompressedModel& model) const = 0;
  // Makes the changes run() would make to `plan.model`: the same tensor names, shapes,
  // encodings, order and file metadata keys, without values; notes in `plan` what it cannot know.
  virtual void plan(CompressPlan& plan) const = 0;
  virtual std::vector<PassReportRow> run(PassContext& ctx) = 0;
};

}  // namespace rwkvlite
