#include "runtime/engine/channel_mix.h"

#include <cstring>

#include "runtime/core/error.h"
#include "runtime/engine/kernels.h"

namespace rwkvlite {

ProjectedChannelMix::ProjectedChannelMix(std::unique_ptr<Projection> key, std::unique_ptr<Projection> value)
    : key_(std::move(key)), value_(std::move(value)) {
  if (!key_ || !value_) throw UsageError("ProjectedChannelMix: key and value projections are required");
  if (value_->cols() != key_->rows() || value_->rows() != key_->cols()) {
    throw UsageError("ProjectedChannelMix: key is " + std::to_string(key_->rows()) + " x " +
                     std::to_string(key_->cols()) + " but value is " + std::to_string(value_->rows()) + " x " +
                     std::to_string(value_->cols()) + " (expected D x F for an F x D key)");
  }
}

void ProjectedChannelMix::apply(const float* x_k, int64_t n, float* out, float* key_preact, Scratch& scratch,
                                ThreadPool& pool) const {
  Scratch::Frame frame(scratch);
  const int64_t f = width();
  float* hidden = scratch.take(static_cast<size_t>(n * f));
  key_->apply_batch(x_k, n, hidden, pool);
  if (key_preact) std::memcpy(key_preact, hidden, sizeof(float) * static_cast<size_t>(n * f));
  kernels::relu_square(hidden, n * f);
  value_->apply_batch(hidden, n, out, pool);
}

}  // namespace rwkvlite
