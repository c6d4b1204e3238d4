// The LibTorch parts of compress: the sparsity-predictor and cluster-head trainers and the
// .pth reader/writer. They live in rwkvlite_compress_torch (the only compress code that
// compiles LibTorch headers) and are installed explicitly: a tool's main (or a test) calls
// register_torch_parts() once; builds without LibTorch never call it, and the passes then
// say that they need a LibTorch build.
#pragma once

#include <vector>

#include "compress/algo/cluster_head_training.h"
#include "compress/algo/predictor_training.h"

namespace rwkvlite {

// Installs both trainers and enables .pth files in converters/model_io. Idempotent.
void register_torch_parts();

// The trainers themselves (bit-identical results for any thread count).
std::vector<TrainedPredictor> train_predictors_torch(const std::vector<PredictorTrainingJob>& jobs, int threads,
                                                    const OnPredictorTrained& on_trained);
void train_cluster_head_torch(ClusterHeadWeights& weights, const ClusterRows& inputs, const ClusterRows& target,
                              int64_t train_rows, const ClusterHeadTrainingOptions& options);

}  // namespace rwkvlite
