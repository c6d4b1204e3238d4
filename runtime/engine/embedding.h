// Token embedding lookup behind an interface, so that a table read row by row on demand (or
// stored compressed) can replace the in-memory one.
#pragma once

#include <cstdint>
#include <vector>

namespace rwkvlite {

class Embedding {
 public:
  virtual ~Embedding() = default;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t n_embd() const = 0;
  // Writes the n_embd() values of row `token`; the caller has checked 0 <= token < vocab_size().
  virtual void lookup(int32_t token, float* out) const = 0;
  virtual int64_t storage_bytes() const = 0;
  // True when rows already have the first layer norm (blocks.0.ln0) applied, as a folded
  // embedding stores them; the engine then skips ln0.
  virtual bool includes_ln0() const { return false; }
};

// The whole V x D table in memory, FP32.
class DenseEmbedding final : public Embedding {
 public:
  DenseEmbedding(int64_t vocab, int64_t n_embd, std::vector<float> table);
  int64_t vocab_size() const override { return vocab_; }
  int64_t n_embd() const override { return n_embd_; }
  void lookup(int32_t token, float* out) const override;
  int64_t storage_bytes() const override { return static_cast<int64_t>(table_.size() * sizeof(float)); }

 private:
  int64_t vocab_, n_embd_;
  std::vector<float> table_;
};

}  // namespace rwkvlite
