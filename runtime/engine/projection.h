// Linear maps y = W x, the engine's only way to touch a weight matrix.
//
// The engine never assumes how a matrix is stored: every matrix-vector product goes through
// Projection, so compressed forms (low-rank factors, int8 or fp16 rows, ...) plug in as further
// subclasses without touching the per-version math.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/engine/thread_pool.h"

namespace rwkvlite {

class Projection {
 public:
  virtual ~Projection() = default;

  virtual int64_t rows() const = 0;  // output width (D_out)
  virtual int64_t cols() const = 0;  // input width (D_in)

  // y[rows()] = W x[cols()]. Implementations must give bit-identical results for any thread
  // count (each output computed entirely by one thread, in a fixed order).
  virtual void apply(const float* x, float* y, ThreadPool& pool) const = 0;

  // For n inputs stored as consecutive rows of x (n x cols()), writes n output rows to y
  // (n x rows()). The default applies apply() row by row; implementations that can reuse each
  // weight across inputs override it. Row t must equal apply() on row t, bit for bit, so that
  // evaluating a sequence at once matches evaluating it token by token.
  virtual void apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const;

  // Bytes of weight storage, for size reports.
  virtual int64_t storage_bytes() const = 0;
};

// A dense FP32 matrix stored row-major, rows() x cols().
class DenseProjection final : public Projection {
 public:
  DenseProjection(int64_t rows, int64_t cols, std::vector<float> row_major);

  // From a matrix stored the other way round: `col_major` is cols x rows row-major (that is,
  // W transposed), as BlinkDL stores LoRA factors used as x @ A.
  static std::unique_ptr<DenseProjection> from_transposed(int64_t rows, int64_t cols, const std::vector<float>& transposed);

  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  void apply(const float* x, float* y, ThreadPool& pool) const override;
  void apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const override;
  int64_t storage_bytes() const override { return static_cast<int64_t>(w_.size() * sizeof(float)); }

  const std::vector<float>& data() const { return w_; }

 private:
  int64_t rows_, cols_;
  std::vector<float> w_;
};

}  // namespace rwkvlite
