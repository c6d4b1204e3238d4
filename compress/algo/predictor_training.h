// Training of channel-mix sparsity predictors, behind a plain C++ interface so that the pass
// (sparsity_predictor_pass.cpp) needs no LibTorch headers.
//
// The trainer lives in predictor_training_torch.cpp, which registers itself from a static
// initialiser when rwkvlite is built with LibTorch (rwkvlite_compress_torch is linked whole
// archive). Builds without LibTorch have no trainer: registered_predictor_trainer() is null
// and the pass reports that instead of crashing.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/core/tensor.h"
#include "compress/pipeline/pass.h"

namespace rwkvlite {

// One layer's training problem: predict active_j = (key_j · x > 0) from x with
// score = up · relu(down · x), both without biases.
struct PredictorTrainingJob {
  const CalibrationData::Rows* inputs = nullptr;  // N x D samples of x_k; rows [0, train_rows) train
  int64_t train_rows = 0;
  // Fills the N x F labels (1 = active), row-major, one byte per (sample, neuron). The trainer
  // calls it on the training thread when the job starts and frees them when the job is done,
  // so only the jobs in flight hold labels (44 MB per layer at the 0.1B shape; all 12 layers'
  // at once were 0.5 GB of the pass's peak).
  std::function<void(std::vector<uint8_t>& labels)> make_labels;
  int64_t ffn_size = 0;  // F
  int rank = 64;         // r
  int epochs = 10;
  int batch_size = 256;
  double learning_rate = 1e-3;
  uint64_t seed = 0;     // everything random (initialisation, batch order) derives from it
};

struct TrainedPredictor {
  Tensor down;  // [r, D]
  Tensor up;    // [F, r]
  double final_loss = 0;  // mean weighted BCE of the last epoch
  double seconds = 0;
};

// Called on the training thread as soon as job `index` is trained, with the labels it was
// trained on (progress, and work that needs only that job's result); calls for different jobs
// may run concurrently.
using OnPredictorTrained =
    std::function<void(size_t index, const TrainedPredictor& trained, const std::vector<uint8_t>& labels)>;

// Trains every job, up to `threads` at a time, calling on_trained (when set) for each as it
// finishes. Each job is computed on one thread with one intra-op thread, so the weights are
// bit-identical for any `threads`.
using PredictorTrainer = std::function<std::vector<TrainedPredictor>(const std::vector<PredictorTrainingJob>&,
                                                                     int threads, const OnPredictorTrained& on_trained)>;

// The registered trainer, or null when this build has none (no LibTorch).
const PredictorTrainer* registered_predictor_trainer();

// Installs the trainer (once, from a tool's main through register_torch_parts();
// compress/algo/torch_parts.h). Error (internal) when one is already installed.
void set_predictor_trainer(PredictorTrainer trainer);

}  // namespace rwkvlite
