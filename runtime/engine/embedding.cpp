#include "runtime/engine/embedding.h"

#include <cstring>

#include "runtime/core/error.h"

namespace rwkvlite {

DenseEmbedding::DenseEmbedding(int64_t vocab, int64_t n_embd, std::vector<float> table)
    : vocab_(vocab), n_embd_(n_embd), table_(std::move(table)) {
  if (vocab <= 0 || n_embd <= 0 || static_cast<int64_t>(table_.size()) != vocab * n_embd) {
    throw UsageError("DenseEmbedding: " + std::to_string(table_.size()) + " values do not form a " +
                     std::to_string(vocab) + " x " + std::to_string(n_embd) + " table");
  }
}

void DenseEmbedding::lookup(int32_t token, float* out) const {
  std::memcpy(out, table_.data() + static_cast<int64_t>(token) * n_embd_, sizeof(float) * static_cast<size_t>(n_embd_));
}

}  // namespace rwkvlite
