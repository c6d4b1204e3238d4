// The plain-C++ parts of the cluster_head pass (no LibTorch): the dense targets, the initial
// cluster head, the held-out evaluation, and the clear error of a build without a trainer.
#include <catch2/catch.hpp>

#include <cmath>

#include "runtime/core/error.h"
#include "compress/algo/cluster_head_training.h"
#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/config.h"

using namespace rwkvlite;

namespace {

// 4 tokens in 2 clusters {0, 2} and {1, 3}, D = 2.
Tensor small_head() { return Tensor({4, 2}, {1, 0, 0, 1, 2, 0, 0, 2}); }
const std::vector<int32_t> kClusterOf = {0, 1, 0, 1};

}  // namespace

TEST_CASE("dense cluster targets sum the dense softmax per cluster", "[cluster_head]") {
  ClusterRows x(2, 2);
  x << 1, 0, 0, 0;
  const DenseClusterTargets t1 = dense_cluster_targets(x, small_head(), kClusterOf, 2, 1);
  const DenseClusterTargets t2 = dense_cluster_targets(x, small_head(), kClusterOf, 2, 2);
  CHECK(t1.probabilities == t2.probabilities);
  // x = (1, 0): logits 1, 0, 2, 0 -> cluster 0 gets (e + e²) / (e + e² + 2).
  const double e = std::exp(1.0), p0 = (e + e * e) / (e + e * e + 2);
  CHECK(t1.probabilities(0, 0) == Approx(p0).epsilon(1e-6));
  CHECK(t1.probabilities(0, 1) == Approx(1 - p0).epsilon(1e-6));
  CHECK(t1.top_cluster[0] == 0);
  // x = 0: uniform.
  CHECK(t1.probabilities(1, 0) == Approx(0.5));
  CHECK_THROWS_AS(dense_cluster_targets(x, Tensor({4, 3}), kClusterOf, 2, 1), InputError);
}

TEST_CASE("initial cluster head and its evaluation", "[cluster_head]") {
  const ClusterHeadWeights w = initial_cluster_head(small_head(), kClusterOf, 2);
  CHECK(w.weight(0, 0) == 1.5f);
  CHECK(w.weight(0, 1) == 0.0f);
  CHECK(w.weight(1, 1) == 1.5f);
  CHECK(w.bias[0] == Approx(std::log(2.0)));
  ClusterRows x(1, 2);
  x << 0, 0;
  const DenseClusterTargets t = dense_cluster_targets(x, small_head(), kClusterOf, 2, 1);
  // At x = 0 both the dense and the initial head say 50/50: KL 0, and p = 0.95 keeps both.
  const ClusterHeadQuality q = evaluate_cluster_head(w, x, t, 0, 1, {0.95, 1, 2});
  CHECK(q.kl == Approx(0).margin(1e-12));
  CHECK(q.mean_clusters_kept == 2);
  CHECK(q.mass_covered == Approx(1.0));
  CHECK(evaluate_cluster_head(w, x, t, 0, 1, {0.95, 1, 1}).mean_clusters_kept == 1);
}

TEST_CASE("cluster_head without LibTorch is a clear usage error", "[cluster_head]") {
  if (registered_cluster_head_trainer() != nullptr) {
    WARN("skipped: this executable has a LibTorch trainer linked in");
    return;
  }
  PipelineConfig cfg = parse_pipeline_config("[[pass]]\ntype = \"cluster_head\"\n", "t.toml", builtin_passes());
  Model m;
  CompressedModel cm = CompressedModel::from_dense(m);
  try {
    cfg.passes[0].pass->validate(cm);
    FAIL("validate accepted a build without LibTorch");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()) == "this rwkvlite was built without LibTorch; cluster_head needs it");
  }
}
