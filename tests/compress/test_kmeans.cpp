// k-means and its seeded generator: pinned numbers, recovery of obvious clusters, determinism
// for any thread count, and clear errors for bad arguments.
#include <catch2/catch.hpp>

#include <set>

#include "runtime/core/error.h"
#include "compress/algo/kmeans.h"
#include "runtime/core/seeded_random.h"

using namespace rwkvlite;

namespace {

// `per_cluster` points around each of `centres` well-separated centres (spread 0.1, centres
// 10 apart), interleaved so cluster membership is not just index order.
KMeansRows separated_points(int centres, int per_cluster, int dims, uint64_t seed) {
  SeededRandom rng(seed);
  KMeansRows x(centres * per_cluster, dims);
  for (int i = 0; i < per_cluster; ++i) {
    for (int c = 0; c < centres; ++c) {
      for (int j = 0; j < dims; ++j) {
        const double centre = (j == c % dims ? 10.0 * (1 + c / dims) : 0.0);
        x(i * centres + c, j) = static_cast<float>(centre + 0.1 * rng.next_normal());
      }
    }
  }
  return x;
}

}  // namespace

TEST_CASE("SeededRandom output is pinned", "[kmeans]") {
  // Cross-checked against an independent Python transcription of splitmix64 + xoshiro256**.
  SeededRandom rng(42);
  CHECK(rng.next_u64() == 0x15780b2e0c2ec716ULL);
  CHECK(rng.next_u64() == 0x6104d9866d113a7eULL);
  CHECK(rng.next_u64() == 0xae17533239e499a1ULL);
  CHECK(rng.next_double() == 0.9246929453253876);
  SeededRandom a(7), b(7), c(8);
  CHECK(a.next_u64() == b.next_u64());
  CHECK(a.next_u64() != c.next_u64());
  for (int i = 0; i < 1000; ++i) {
    const uint64_t v = a.next_below(10);
    REQUIRE(v < 10);
    const double d = a.next_double();
    REQUIRE((d >= 0.0 && d < 1.0));
  }
  // Normal draws have roughly unit variance.
  SeededRandom g(1);
  double sum = 0, sum2 = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double v = g.next_normal();
    sum += v;
    sum2 += v * v;
  }
  CHECK(std::abs(sum / n) < 0.03);
  CHECK(std::abs(sum2 / n - 1.0) < 0.05);
}

TEST_CASE("k-means recovers well-separated clusters exactly", "[kmeans]") {
  const int centres = 6, per = 40;
  const KMeansRows x = separated_points(centres, per, 4, 3);
  for (int pca : {0, 3}) {
    INFO("pca_dims " << pca);
    KMeansOptions o;
    o.k = centres;
    o.seed = 11;
    o.pca_dims = pca;
    const KMeansResult r = kmeans(x, o);
    CHECK(r.converged);
    // Point i belongs to true cluster i % centres: same true cluster <=> same found cluster.
    std::set<int32_t> labels;
    for (int c = 0; c < centres; ++c) {
      const int32_t label = r.assignment[static_cast<size_t>(c)];
      labels.insert(label);
      for (int i = 0; i < per; ++i) REQUIRE(r.assignment[static_cast<size_t>(i * centres + c)] == label);
    }
    CHECK(labels.size() == static_cast<size_t>(centres));
    // Inertia: 6 * 40 points * 4 dims * 0.1² ~ 9.6 (of spread, after PCA a bit less).
    CHECK(r.inertia < 15.0);
  }
}

TEST_CASE("k-means is deterministic for any thread count and keeps every cluster non-empty", "[kmeans]") {
  SeededRandom rng(5);
  KMeansRows x(500, 16);
  for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.next_normal());
  KMeansOptions o;
  o.k = 32;
  o.seed = 99;
  o.threads = 1;
  const KMeansResult a = kmeans(x, o);
  o.threads = 2;
  const KMeansResult b = kmeans(x, o);
  o.threads = 3;
  const KMeansResult c = kmeans(x, o);
  CHECK(a.assignment == b.assignment);
  CHECK(a.assignment == c.assignment);
  CHECK(a.centroids == b.centroids);
  CHECK(a.inertia == c.inertia);
  std::vector<int> count(32, 0);
  for (int32_t v : a.assignment) ++count[static_cast<size_t>(v)];
  for (int v : count) CHECK(v > 0);
  // A different seed gives a different (but equally valid) clustering.
  o.seed = 100;
  CHECK(kmeans(x, o).assignment != a.assignment);

  // Identical points: k-means++ has no distance to sample by, yet every cluster gets a point.
  KMeansRows same = KMeansRows::Constant(10, 3, 1.5f);
  o.k = 4;
  const KMeansResult d = kmeans(same, o);
  std::set<int32_t> used(d.assignment.begin(), d.assignment.end());
  CHECK(used.size() == 4);
}

TEST_CASE("PCA projection finds the dominant direction", "[kmeans]") {
  SeededRandom rng(2);
  KMeansRows x(300, 3);
  for (int i = 0; i < 300; ++i) {
    const double t = rng.next_normal();
    x(i, 0) = static_cast<float>(3 * t + 0.01 * rng.next_normal());
    x(i, 1) = static_cast<float>(4 * t + 0.01 * rng.next_normal());
    x(i, 2) = static_cast<float>(0.01 * rng.next_normal());
  }
  const Eigen::MatrixXd p = pca_project(x, 1);
  REQUIRE(p.rows() == 300);
  REQUIRE(p.cols() == 1);
  // The first component is along (3, 4, 0)/5: its projection has almost all the variance.
  const double var_total = (x.cast<double>().rowwise() - x.cast<double>().colwise().mean()).squaredNorm();
  CHECK(p.squaredNorm() / var_total > 0.999);
}

TEST_CASE("k-means rejects bad arguments", "[kmeans]") {
  KMeansRows x = KMeansRows::Random(8, 4);
  KMeansOptions o;
  o.k = 0;
  CHECK_THROWS_AS(kmeans(x, o), UsageError);
  o.k = 9;
  CHECK_THROWS_AS(kmeans(x, o), UsageError);
  o.k = 2;
  o.max_iterations = 0;
  CHECK_THROWS_AS(kmeans(x, o), UsageError);
  o.max_iterations = 10;
  o.pca_dims = 5;
  CHECK_THROWS_AS(kmeans(x, o), UsageError);
  o.pca_dims = -1;
  CHECK_THROWS_AS(kmeans(x, o), UsageError);
  o.pca_dims = 0;
  CHECK_THROWS_AS(kmeans(KMeansRows(0, 4), o), UsageError);
  x(3, 2) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(kmeans(x, o), InputError);
  CHECK_THROWS_AS(pca_project(x, 0), UsageError);
}
