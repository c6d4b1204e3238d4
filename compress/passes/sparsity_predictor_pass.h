// The "sparsity_predictor" pass: per channel-mix layer, predicts which neurons of
// h = relu(key · x_k)² are non-zero for a token, so the runtime computes only those
// (docs/compact-format.md §6 for the tensor names and the union rule).
//
// For each layer i it writes
//   blocks.{i}.ffn.predictor.down [r, D]  f32    MLP first layer: h = relu(down · x_k)
//   blocks.{i}.ffn.predictor.up   [F, r]  f32    scores (logits) = up · h
//   blocks.{i}.ffn.key.sign       [F, D]  b1     1-bit copy of the key: per-row mean |K_j| and signs
// after the layer's other channel-mix tensors, and metadata "sparse_ffn":
//   {"neuron_cache_fraction": x, "layers": [{"layer", "mlp_threshold", "sign_top_k"}, ...]}.
// A neuron is predicted active when its MLP score exceeds mlp_threshold, or when it is among
// the sign_top_k largest s_j = dot(key.sign row j, x_k) (ties: lower j).
//
// Training data: the calibration's sampled key inputs x_k; the truth is key_j · x_k > 0 with
// the FP32 key. The last holdout_fraction of the samples (by position in the text) are held
// out: never trained on, and used to choose mlp_threshold, the largest logit at which the
// union still finds target_recall of the truly active (sample, neuron) pairs.
// The MLP itself is trained by the LibTorch trainer (predictor_training.h); builds without
// LibTorch reject this pass with a UsageError.
//
// Config keys (above SparsityPredictorOptions): rank, epochs, batch_size, learning_rate, holdout_fraction,
// target_recall, sign_top_fraction, neuron_cache_fraction, ignore (layers whose key weight
// name matches are left dense).
//
// Report rows (one per layer): tensor blocks.{i}.ffn.predictor, action "predictor r=<r>",
// shape [F, D] of the key, bytes before 0 and after the bytes of the three tensors, metric
// recall (held-out recall of the union rule), seconds (training and threshold),
// extra {layer, true_sparsity, heldout_recall, predicted_active_fraction, precision,
// mlp_threshold, sign_top_k, sign_only_recall, train_seconds, predictor_bytes, final_loss,
// train_samples, heldout_samples}.
#pragma once

#include <string>
#include <vector>

#include "compress/algo/predictor_training.h"
#include "compress/pipeline/option_reader.h"
#include "compress/pipeline/pass.h"
#include "compress/pipeline/tensor_selector.h"

namespace rwkvlite {

// Config keys of a [[pass]] table of this type (defaults shown; docs/config.md):
//
//   type = "sparsity_predictor"  # needs calibration and a LibTorch build; per channel-mix layer
//                              # writes ffn.predictor.down [r,D], ffn.predictor.up [F,r] (f32),
//                              # ffn.key.sign (b1 copy of the key) and metadata "sparse_ffn"
//   rank = 64                  # hidden width r of the MLP D -> r -> F             [1, 65536]
//   epochs = 10                # passes over the training samples                  (>= 1)
//   batch_size = 256           # samples per Adam step                             (>= 1)
//   learning_rate = 0.002      # Adam                                              (0, 1]
//   holdout_fraction = 0.1     # last share of the samples (by text position), not (0, 0.9]
//                              # trained on; mlp_threshold is tuned on it
//   target_recall = 0.99       # share of truly active neurons the union must find (0, 1]
//                              # on the held-out samples (largest threshold that does)
//   sign_top_fraction = 0.05   # sign_top_k = round(this · F) neurons by the 1-bit key [0, 1]
//   neuron_cache_fraction = 0.5  # recorded for the runtime: neurons kept in memory  [0, 1]
//   ignore = []                # layers whose ffn key weight name matches get no predictor

struct SparsityPredictorOptions {
  int rank = 64;
  int epochs = 10;
  int batch_size = 256;
  double learning_rate = 2e-3;
  double holdout_fraction = 0.1;
  double target_recall = 0.99;
  double sign_top_fraction = 0.05;
  double neuron_cache_fraction = 0.5;
  std::vector<std::string> ignore;

  static SparsityPredictorOptions read(OptionReader& reader);
  void check() const;  // UsageError (no location) for options built in code
};

// What the held-out split says about one layer's predictor with a given threshold.
struct PredictorQuality {
  double recall = 1;                     // predicted and active / active
  double precision = 1;                  // predicted and active / predicted
  double predicted_active_fraction = 0;  // predicted / (samples · F): neurons computed per token / F
  double sign_only_recall = 1;           // recall of the sign_top_k rule alone
};

class SparsityPredictorPass : public Pass {
 public:
  explicit SparsityPredictorPass(SparsityPredictorOptions options);  // calls options.check()

  bool needs_calibration() const override { return true; }
  CalibrationUse calibration_use() const override { return {.ffn_key_inputs = true}; }
  void validate(const CompressedModel& model) const override;
  // The tensors and metadata keys exactly; each layer's mlp_threshold is measured, so the
  // plan holds a placeholder and widens header_slack_bytes.
  void plan(CompressPlan& plan) const override;
  std::vector<PassReportRow> run(PassContext& ctx) override;

  std::vector<int64_t> selected_layers(const CompressedModel& model) const;

 private:
  // Error (internal) without channel-mix samples; UsageError when too few to hold out.
  void check_calibration(const CompressedModel& model, const CalibrationData* calibration) const;
  std::vector<PredictorTrainingJob> training_jobs(const PassContext& ctx, const std::vector<int64_t>& layers,
                                                  int64_t train_rows) const;
  PassReportRow evaluate_layer(const PassContext& ctx, int64_t layer, const TrainedPredictor& trained,
                               const std::vector<uint8_t>& labels, int64_t train_rows, float& threshold) const;
  SparsityPredictorOptions options_;
  TensorSelector ignore_;
};

}  // namespace rwkvlite
