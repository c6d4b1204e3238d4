// The "cluster_head" pass: a two-level head for large vocabularies (RWKV-Lite).
//
// The vocabulary is clustered with k-means (compress/algo/kmeans.h) over the rows of the head or of
// the embedding, a cluster-level head [K, D] is trained on calibration head inputs to predict
// the dense head's cluster probabilities (compress/algo/cluster_head_training.h, LibTorch), and the
// head's rows are stored grouped by cluster so the runtime computes exact logits only for the
// tokens of the most likely clusters. Writes (docs/compact-format.md section 6):
//   head.clustered        [V, D]  head rows, cluster 0 first, ascending token id inside a
//                                 cluster; row-addressable; the encoding head.weight had
//   head.row_token        [V]     i32, token id of each row of head.clustered
//   head.cluster_offsets  [K+1]   i32, rows [off[c], off[c+1]) are cluster c
//   head.cluster_weight   [K, D], head.cluster_bias [K]   f32, the cluster-level head
// and removes head.weight. File metadata "clustered_head": {k, p, min_clusters, max_clusters}.
//
// Options (all optional):
//   k = 16                 clusters                                           [1, V]
//   source = "head"        rows to cluster: "head" or "embedding" (emb.weight, or
//                          emb.folded when fold_embedding ran first)
//   pca_dims = 0           cluster a PCA projection to this many dimensions (0: off)
//   max_iterations = 100   Lloyd iterations                                   (>= 1)
//   p = 0.95               runtime: keep the most likely clusters until their predicted
//                          probability reaches p                              (0, 1]
//   min_clusters = 1       runtime: at least this many clusters               [1, k]
//   max_clusters = k       runtime: at most this many clusters                [min_clusters, k]
//   epochs = 30            training epochs over the calibration samples       [0, 10000]
//   learning_rate = 0.003  Adam step size                                     (0, 1]
//   holdout_fraction = 0.1 the last fraction of samples, held out for the report [0, 0.9]
//
// Report rows: head.clustered (extra: k-means iterations/converged/inertia, smallest and
// largest cluster; the held-out quality of the trained head and of its initial guess:
// kl, top_cluster_accuracy, mean_clusters_kept, mass_covered; train/held-out samples,
// training seconds), then one row each for the other tensors written (no metric, not timed).
// The head.clustered row's metric is kl: the held-out KL(dense cluster probabilities ‖
// predicted) in nats; its seconds cover the whole pass.
#pragma once

#include "compress/algo/cluster_head_training.h"
#include "compress/algo/kmeans.h"
#include "compress/pipeline/option_reader.h"
#include "compress/pipeline/pass.h"

namespace rwkvlite {

// Config keys of a [[pass]] table of this type (defaults shown; docs/config.md):
//
//   type = "cluster_head"      # two-level head (needs calibration and LibTorch): k-means
//                              # clusters of the vocabulary, head rows grouped by cluster
//                              # (head.clustered ...), a trained k x D cluster-level head
//   k = 16                     # clusters                                        [1, V]
//   source = "head"            # rows to cluster: "head" | "embedding"
//   pca_dims = 0               # cluster a PCA projection of this width; 0 = off  [0, D]
//   max_iterations = 100       # Lloyd iterations                                (>= 1)
//   p = 0.95                   # runtime keeps clusters until this much predicted (0, 1]
//                              # probability
//   min_clusters = 1           # runtime keeps at least ...                      [1, k]
//   max_clusters = 16          # ... and at most this many clusters (default k)  [min, k]
//   epochs = 30                # cluster-head training epochs (Adam, KL loss)    [0, 10000]
//   learning_rate = 0.003      #                                                 (0, 1]
//   holdout_fraction = 0.1     # last fraction of calibration samples held out   [0, 0.9]
//                              # for the report (KL, top-cluster accuracy, ...)

struct ClusterHeadOptions {
  int k = 16;
  std::string source = "head";
  int pca_dims = 0;
  int max_iterations = 100;
  double p = 0.95;
  int min_clusters = 1;
  int max_clusters = 16;
  int epochs = 30;
  double learning_rate = 3e-3;
  double holdout_fraction = 0.1;

  static ClusterHeadOptions read(OptionReader& reader);
  void check() const;  // UsageError for options built in code
};

class ClusterHeadPass : public Pass {
 public:
  explicit ClusterHeadPass(ClusterHeadOptions options);

  bool needs_calibration() const override { return true; }
  CalibrationUse calibration_use() const override { return {.head_inputs = true}; }
  // UsageError: no LibTorch trainer in this build, head.weight missing (clustered already?)
  // or not [V, D], k > V, pca_dims > D, the source rows missing.
  void validate(const CompressedModel& model) const override;
  void plan(CompressPlan& plan) const override;
  std::vector<PassReportRow> run(PassContext& ctx) override;

 private:
  // The trained cluster-level head and its held-out quality before and after training.
  struct Trained {
    ClusterHeadWeights weights;
    ClusterHeadQuality before, after;
    int64_t train_rows = 0;
    double seconds = 0;
  };
  // UsageError without at least 2 sampled head inputs; Error (internal) when their width is wrong.
  void check_calibration(const PassContext& ctx) const;
  KMeansResult cluster_vocabulary(const PassContext& ctx) const;
  Trained train_cluster_head(const PassContext& ctx, const std::vector<int32_t>& cluster_of_token) const;
  std::string source_tensor(const CompressedModel& model) const;
  ClusterHeadOptions options_;
};

}  // namespace rwkvlite
