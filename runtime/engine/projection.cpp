#include "runtime/engine/projection.h"

#include <algorithm>

#include "runtime/core/error.h"
#include "runtime/engine/kernels.h"

namespace rwkvlite {

void Projection::apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const {
  for (int64_t t = 0; t < n; ++t) apply(x + t * cols(), y + t * rows(), pool);
}

DenseProjection::DenseProjection(int64_t rows, int64_t cols, std::vector<float> row_major)
    : rows_(rows), cols_(cols), w_(std::move(row_major)) {
  if (rows <= 0 || cols <= 0 || static_cast<int64_t>(w_.size()) != rows * cols) {
    throw UsageError("DenseProjection: " + std::to_string(w_.size()) + " values do not form a " + std::to_string(rows) +
                     " x " + std::to_string(cols) + " matrix");
  }
}

std::unique_ptr<DenseProjection> DenseProjection::from_transposed(int64_t rows, int64_t cols,
                                                                  const std::vector<float>& transposed) {
  if (static_cast<int64_t>(transposed.size()) != rows * cols) {
    throw UsageError("DenseProjection::from_transposed: " + std::to_string(transposed.size()) +
                     " values do not form a " + std::to_string(cols) + " x " + std::to_string(rows) + " matrix");
  }
  std::vector<float> w(transposed.size());
  for (int64_t c = 0; c < cols; ++c) {
    for (int64_t r = 0; r < rows; ++r) w[r * cols + c] = transposed[c * rows + r];
  }
  return std::make_unique<DenseProjection>(rows, cols, std::move(w));
}

void DenseProjection::apply(const float* x, float* y, ThreadPool& pool) const {
  pool.parallel_for(0, rows_, cols_, [&](int64_t lo, int64_t hi) { kernels::matvec_rows(w_.data(), lo, hi, cols_, x, y); });
}

void DenseProjection::apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const {
  if (n == 1) {
    apply(x, y, pool);
    return;
  }
  // Rows outermost: each weight row is read from memory once and reused, from cache, for every
  // input in the batch, which is what makes sequence mode faster than token mode on matrices
  // too large for the cache.
  pool.parallel_for(0, rows_, cols_ * n, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) kernels::dot_many(w_.data() + r * cols_, x, cols_, n, cols_, y + r, rows_);
  });
}

}  // namespace rwkvlite
