#include "compress/algo/cluster_head_training.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/core/error.h"
#include "runtime/engine/thread_pool.h"
#include "compress/pipeline/dense_products.h"

namespace rwkvlite {

namespace {

ClusterHeadTrainer& trainer_slot() {
  static ClusterHeadTrainer trainer = nullptr;
  return trainer;
}

// Softmax of `logits` (in place, double) after subtracting the maximum.
void softmax_in_place(std::vector<double>& logits) {
  const double m = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (double& v : logits) {
    v = std::exp(v - m);
    sum += v;
  }
  for (double& v : logits) v /= sum;
}

}  // namespace

void set_cluster_head_trainer(ClusterHeadTrainer trainer) { trainer_slot() = trainer; }
ClusterHeadTrainer registered_cluster_head_trainer() { return trainer_slot(); }

DenseClusterTargets dense_cluster_targets(const ClusterRows& inputs, const Tensor& head,
                                          const std::vector<int32_t>& cluster_of_token, int k, int threads) {
  const int64_t n = inputs.rows(), d = inputs.cols(), v = head.rows();
  if (head.cols() != d || static_cast<int64_t>(cluster_of_token.size()) != v) {
    throw InputError("cluster head: head " + shape_to_string(head.shape) + ", inputs of width " + std::to_string(d) +
                     " and " + std::to_string(cluster_of_token.size()) + " cluster ids do not fit together");
  }
  DenseClusterTargets out;
  out.probabilities = ClusterRows::Zero(n, k);
  out.top_cluster.assign(static_cast<size_t>(n), 0);
  ThreadPool pool(std::max(1, threads));
  // The logits of a block of samples at once through the compressor's product kernel (FP32, one
  // FMA chain per logit, so within FP32 rounding of the exact dot product and the same bits for
  // any thread count), then each sample's softmax and cluster sums in double on one thread.
  // 256 samples keep the logits at 64 MiB for a 65536-token vocabulary while every packed head
  // panel is reused 256 times.
  constexpr int64_t kSamplesPerBlock = 256;
  std::vector<float> block_logits(static_cast<size_t>(std::min(n, kSamplesPerBlock) * v));
  for (int64_t b0 = 0; b0 < n; b0 += kSamplesPerBlock) {
    const int64_t bn = std::min(kSamplesPerBlock, n - b0);
    multiply_rows_by_transpose(inputs.data() + b0 * d, bn, head.data.data(), v, d, block_logits.data(), v, pool);
    pool.parallel_for(0, bn, v * 8, [&](int64_t lo, int64_t hi) {
      std::vector<double> probs(static_cast<size_t>(v));
      std::vector<double> cluster(static_cast<size_t>(k));
      for (int64_t s = lo; s < hi; ++s) {
        const float* logits = block_logits.data() + s * v;
        int64_t top = 0;
        for (int64_t t = 0; t < v; ++t) {
          probs[static_cast<size_t>(t)] = logits[t];
          if (logits[t] > logits[top]) top = t;
        }
        softmax_in_place(probs);
        std::fill(cluster.begin(), cluster.end(), 0.0);
        for (int64_t t = 0; t < v; ++t) cluster[static_cast<size_t>(cluster_of_token[static_cast<size_t>(t)])] += probs[static_cast<size_t>(t)];
        const int64_t i = b0 + s;
        for (int c = 0; c < k; ++c) out.probabilities(i, c) = static_cast<float>(cluster[static_cast<size_t>(c)]);
        out.top_cluster[static_cast<size_t>(i)] = cluster_of_token[static_cast<size_t>(top)];
      }
    });
  }
  return out;
}

ClusterHeadWeights initial_cluster_head(const Tensor& head, const std::vector<int32_t>& cluster_of_token, int k) {
  const int64_t v = head.rows(), d = head.cols();
  Eigen::MatrixXd sums = Eigen::MatrixXd::Zero(k, d);
  std::vector<int64_t> count(static_cast<size_t>(k), 0);
  const Eigen::Map<const ClusterRows> h(head.data.data(), v, d);
  for (int64_t t = 0; t < v; ++t) {
    const int32_t c = cluster_of_token[static_cast<size_t>(t)];
    sums.row(c) += h.row(t).cast<double>();
    ++count[static_cast<size_t>(c)];
  }
  ClusterHeadWeights w;
  w.weight = ClusterRows::Zero(k, d);
  w.bias.assign(static_cast<size_t>(k), 0.0f);
  for (int c = 0; c < k; ++c) {
    if (count[static_cast<size_t>(c)] == 0) throw Error("cluster head: cluster " + std::to_string(c) + " is empty", kExitInternal);
    w.weight.row(c) = (sums.row(c) / static_cast<double>(count[static_cast<size_t>(c)])).cast<float>();
    w.bias[static_cast<size_t>(c)] = static_cast<float>(std::log(static_cast<double>(count[static_cast<size_t>(c)])));
  }
  return w;
}

ClusterHeadQuality evaluate_cluster_head(const ClusterHeadWeights& w, const ClusterRows& inputs,
                                         const DenseClusterTargets& target, int64_t begin, int64_t end,
                                         const ClusterKeepRule& keep) {
  const int64_t k = w.weight.rows();
  ClusterHeadQuality q;
  std::vector<double> predicted(static_cast<size_t>(k));
  std::vector<int64_t> order(static_cast<size_t>(k));
  for (int64_t i = begin; i < end; ++i) {
    for (int64_t c = 0; c < k; ++c) {
      predicted[static_cast<size_t>(c)] =
          w.weight.row(c).cast<double>().dot(inputs.row(i).cast<double>()) + w.bias[static_cast<size_t>(c)];
    }
    softmax_in_place(predicted);
    double kl = 0;
    for (int64_t c = 0; c < k; ++c) {
      const double p = target.probabilities(i, c);
      if (p > 0) kl += p * (std::log(p) - std::log(std::max(predicted[static_cast<size_t>(c)], 1e-300)));
    }
    q.kl += kl;
    // The runtime's rule: most likely clusters first (ties: lower index).
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return predicted[static_cast<size_t>(a)] > predicted[static_cast<size_t>(b)];
    });
    q.top_cluster_accuracy += order[0] == target.top_cluster[static_cast<size_t>(i)] ? 1 : 0;
    double cumulative = 0, covered = 0;
    int kept = 0;
    while (kept < k && kept < keep.max_clusters && (kept < keep.min_clusters || cumulative < keep.p)) {
      cumulative += predicted[static_cast<size_t>(order[static_cast<size_t>(kept)])];
      covered += target.probabilities(i, order[static_cast<size_t>(kept)]);
      ++kept;
    }
    q.mean_clusters_kept += kept;
    q.mass_covered += covered;
  }
  q.samples = end - begin;
  if (q.samples > 0) {
    const double n = static_cast<double>(q.samples);
    q.kl /= n;
    q.top_cluster_accuracy /= n;
    q.mean_clusters_kept /= n;
    q.mass_covered /= n;
  }
  return q;
}

}  // namespace rwkvlite
