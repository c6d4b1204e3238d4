// k-means clustering of the rows of a matrix (for the clustered head: vocabulary rows).
//
// k-means++ seeding from SeededRandom, then Lloyd iterations until no assignment changes or
// max_iterations. Deterministic for any thread count: points are ranked against the centroids
// in fixed blocks of rows (each block by exactly one thread, the same matrix product
// whichever), and every sum over points runs in point order on one thread. Ties go to the
// lower cluster index.
//
// Empty clusters never survive an iteration: an empty cluster takes the point farthest from
// its own centroid (lowest index on ties) among clusters with more than one point, so the
// result always has k non-empty clusters (needs at least k points).
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <vector>

namespace rwkvlite {

using KMeansRows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct KMeansOptions {
  int k = 16;
  int max_iterations = 100;
  int pca_dims = 0;   // > 0: cluster the projection onto this many principal components
  uint64_t seed = 0;
  int threads = 1;
};

struct KMeansResult {
  std::vector<int32_t> assignment;  // per point, in [0, k); every cluster non-empty
  Eigen::MatrixXd centroids;        // k x dims of the clustered space (after PCA if any)
  int iterations = 0;               // Lloyd iterations run
  bool converged = false;           // assignments stopped changing before max_iterations
  double inertia = 0;               // sum of squared distances to the assigned centroid
};

// UsageError when k < 1, k > points, max_iterations < 1, pca_dims < 0 or > columns, or the
// matrix is empty; InputError when a value is not finite.
KMeansResult kmeans(const KMeansRows& points, const KMeansOptions& options);

// Projection of the centred rows onto the `dims` leading principal components (eigenvectors
// of the covariance by Eigen's self-adjoint solver, largest eigenvalue first, each signed so
// that its largest-magnitude entry is positive). N x dims, in double.
Eigen::MatrixXd pca_project(const KMeansRows& points, int dims);

}  // namespace rwkvlite
