// The output head (logits = W · x over the vocabulary) behind an interface, so that a
// clustered head, which scores only the likely clusters' tokens exactly, can replace it.
#pragma once

#include <cstdint>
#include <memory>

#include "runtime/engine/projection.h"
#include "runtime/engine/thread_pool.h"

namespace rwkvlite {

class Head {
 public:
  virtual ~Head() = default;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t n_embd() const = 0;
  // logits[vocab_size()] from the final-layer-normed x[n_embd()]. Must fill every entry.
  virtual void apply(const float* x, float* logits, ThreadPool& pool) const = 0;
  virtual int64_t storage_bytes() const = 0;
};

// A head that is one V x D projection.
class ProjectionHead final : public Head {
 public:
  explicit ProjectionHead(std::unique_ptr<Projection> weight);
  int64_t vocab_size() const override { return weight_->rows(); }
  int64_t n_embd() const override { return weight_->cols(); }
  void apply(const float* x, float* logits, ThreadPool& pool) const override { weight_->apply(x, logits, pool); }
  int64_t storage_bytes() const override { return weight_->storage_bytes(); }
  const Projection& weight() const { return *weight_; }
  std::unique_ptr<Projection>& weight_slot() { return weight_; }  // for replacing the matrix

 private:
  std::unique_ptr<Projection> weight_;
};

}  // namespace rwkvlite
