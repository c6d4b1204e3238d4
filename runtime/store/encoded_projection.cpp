#include "runtime/store/encoded_projection.h"

#include "runtime/core/error.h"
#include "runtime/engine/thread_pool.h"
#include "runtime/format/codec.h"

namespace rwkvlite {

EncodedProjection::EncodedProjection(int64_t rows, int64_t cols, format::EncodingSpec encoding,
                                     std::vector<uint8_t> bytes, std::shared_ptr<ResidencyCounter> counter)
    : rows_(rows),
      cols_(cols),
      encoding_(encoding),
      row_bytes_(format::encoded_row_bytes(encoding.encoding, cols, encoding.params)),
      bytes_(std::move(bytes)),
      resident_(std::move(counter), static_cast<int64_t>(bytes_.size())) {
  if (bytes_.size() != row_bytes_ * static_cast<size_t>(rows)) {
    throw InputError("encoded matrix of " + std::to_string(rows) + " x " + std::to_string(cols) + " has " +
                     std::to_string(bytes_.size()) + " bytes, expected " + std::to_string(row_bytes_ * rows));
  }
}

void EncodedProjection::apply(const float* x, float* y, ThreadPool& pool) const {
  // Each output row is one fused dot product computed by one thread: deterministic for any
  // thread count.
  pool.parallel_for(0, rows_, cols_, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      y[r] = format::dot_row(&bytes_[static_cast<size_t>(r) * row_bytes_], x, cols_, encoding_.encoding, encoding_.params);
    }
  });
}

LowRankProjection::LowRankProjection(std::unique_ptr<Projection> a, std::unique_ptr<Projection> b)
    : a_(std::move(a)), b_(std::move(b)) {
  if (a_->rows() != b_->cols()) {
    throw InputError("low-rank factors do not chain: A is " + std::to_string(a_->rows()) + " x " +
                     std::to_string(a_->cols()) + ", B is " + std::to_string(b_->rows()) + " x " + std::to_string(b_->cols()));
  }
}

void LowRankProjection::apply(const float* x, float* y, ThreadPool& pool) const {
  // The rank-r intermediate is small; a thread-local buffer avoids an allocation per call.
  thread_local std::vector<float> mid;
  mid.resize(static_cast<size_t>(a_->rows()));
  a_->apply(x, mid.data(), pool);
  b_->apply(mid.data(), y, pool);
}

}  // namespace rwkvlite
