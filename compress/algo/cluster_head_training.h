// Training and evaluation of the cluster-level head of the "cluster_head" pass.
//
// The cluster head predicts, from the head's input x, the probability of each vocabulary
// cluster: q = softmax(W_c x + b_c). Its target is what the dense head says: p_c = sum of
// softmax(H x) over the tokens of cluster c. Training (KL(p ‖ q), Adam) needs LibTorch and
// lives in cluster_head_training_torch.cpp, which registers itself here from a static
// initializer; everything else (targets, the initial guess, the held-out evaluation) is plain
// C++ so that builds without LibTorch can still read and test it.
#pragma once

#include <cstdint>
#include <vector>

#include "compress/pipeline/pass.h"

namespace rwkvlite {

using ClusterRows = CalibrationData::Rows;  // row-major float N x cols

struct ClusterHeadWeights {
  ClusterRows weight;     // K x D
  std::vector<float> bias;  // K
};

struct DenseClusterTargets {
  ClusterRows probabilities;         // N x K: p per sample
  std::vector<int32_t> top_cluster;  // N: the cluster of the dense head's most likely token
};

// What the dense head `head` [V, D] (rows in token order) says about each of inputs [N, D];
// cluster_of_token has V entries in [0, k). Logits in FP32 by multiply_rows_by_transpose
// (dense_products.h: within FP32 rounding of the exact dot product), softmax in double.
// Deterministic for any thread count (each logit one FMA chain, each sample's softmax on one
// thread).
DenseClusterTargets dense_cluster_targets(const ClusterRows& inputs, const Tensor& head,
                                          const std::vector<int32_t>& cluster_of_token, int k, int threads);

// The starting point: W_c = mean of the cluster's head rows, b_c = log(cluster size), which
// makes W_c x + b_c a first-order estimate of log sum_{t in c} exp(h_t x).
ClusterHeadWeights initial_cluster_head(const Tensor& head, const std::vector<int32_t>& cluster_of_token, int k);

// How well a cluster head matches the dense one on some samples.
struct ClusterHeadQuality {
  int64_t samples = 0;
  double kl = 0;                    // mean KL(p ‖ q) in nats
  double top_cluster_accuracy = 0;  // fraction where argmax q is the cluster of the dense top-1 token
  double mean_clusters_kept = 0;    // clusters kept by the runtime rule (most likely by q until
                                    // their q sums to p, within [min_clusters, max_clusters])
  double mass_covered = 0;          // mean p mass of the kept clusters (1 = exact logits)
};

struct ClusterKeepRule {
  double p = 0.95;
  int min_clusters = 1;
  int max_clusters = 16;
};

// Quality on samples [begin, end) of `inputs` and their dense targets.
ClusterHeadQuality evaluate_cluster_head(const ClusterHeadWeights& w, const ClusterRows& inputs,
                                         const DenseClusterTargets& target, int64_t begin, int64_t end,
                                         const ClusterKeepRule& keep);

struct ClusterHeadTrainingOptions {
  int epochs = 30;
  double learning_rate = 3e-3;
  int batch_size = 256;
  uint64_t seed = 0;
};

// Trains in place from `weights` (the initial guess) on rows [0, train_rows) of inputs [N, D]
// and targets [N, K].
// Must give bit-identical weights for the same arguments whatever the caller's threads.
using ClusterHeadTrainer = void (*)(ClusterHeadWeights& weights, const ClusterRows& inputs, const ClusterRows& target,
                                    int64_t train_rows, const ClusterHeadTrainingOptions& options);

// Installs the trainer (from register_torch_parts(); compress/algo/torch_parts.h).
void set_cluster_head_trainer(ClusterHeadTrainer trainer);
// Null when this build has no LibTorch.
ClusterHeadTrainer registered_cluster_head_trainer();

}  // namespace rwkvlite
