// The channel-mix feed-forward core, out = V · relu(K · x_k)², behind an interface.
//
// Only the key/value part lives here: the token-shift mixing before it and the receptance gate
// after it (v4 to v6) are per-version math in the engine. That split lets a sparse
// implementation, which computes only the neurons a predictor expects to be active, replace
// this whole block without knowing about architecture versions.
#pragma once

#include <cstdint>
#include <memory>

#include "runtime/engine/projection.h"
#include "runtime/engine/scratch.h"
#include "runtime/engine/thread_pool.h"

namespace rwkvlite {

class ChannelMix {
 public:
  virtual ~ChannelMix() = default;

  virtual int64_t n_embd() const = 0;  // D: width of x_k and of the output
  virtual int64_t width() const = 0;   // F: number of hidden neurons

  // For n tokens, x_k: n x D rows; out: n x D rows of V · relu(K · x_k)².
  // When key_preact is not null it receives the n x F pre-activations K · x_k (before the
  // relu), for calibration; an implementation that cannot produce them exactly must throw.
  // Results must not depend on the thread count, and row t must not depend on n.
  virtual void apply(const float* x_k, int64_t n, float* out, float* key_preact, Scratch& scratch,
                     ThreadPool& pool) const = 0;

  virtual int64_t storage_bytes() const = 0;
};

// The dense form: both matrices behind Projection (which may itself be compressed).
class ProjectedChannelMix final : public ChannelMix {
 public:
  // key: F x D, value: D x F.
  ProjectedChannelMix(std::unique_ptr<Projection> key, std::unique_ptr<Projection> value);

  int64_t n_embd() const override { return key_->cols(); }
  int64_t width() const override { return key_->rows(); }
  void apply(const float* x_k, int64_t n, float* out, float* key_preact, Scratch& scratch,
             ThreadPool& pool) const override;
  int64_t storage_bytes() const override { return key_->storage_bytes() + value_->storage_bytes(); }

  const Projection& key() const { return *key_; }
  const Projection& value() const { return *value_; }
  // For replacing the matrices (e.g. by compressed ones of the same shape).
  std::unique_ptr<Projection>& key_slot() { return key_; }
  std::unique_ptr<Projection>& value_slot() { return value_; }

 private:
  std::unique_ptr<Projection> key_, value_;
};

}  // namespace rwkvlite
