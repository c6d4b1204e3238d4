// The one thing evaluation needs from a model: feed a token, get next-token logits.
//
// Dense engines, compressed runtimes and reference models all adapt to this, so the metrics
// (bits per byte, top-1, agreement, KL) are computed by one piece of code for every model.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rwkvlite {

class TokenPredictor {
 public:
  virtual ~TokenPredictor() = default;
  virtual int64_t vocab_size() const = 0;
  // Returns to the fresh state of a new text.
  virtual void reset() = 0;
  // Feeds one token; writes vocab_size() logits for the next token when `logits` is not null.
  virtual void feed(int32_t token, float* logits) = 0;
  // Feeds n tokens (a prompt); writes the logits after the last one when `last_logits` is not
  // null. Engines run it in sequence mode (matrix-matrix products over blocks of tokens), with
  // the same result as feeding the tokens one by one.
  virtual void feed_sequence(const int32_t* tokens, size_t n, float* last_logits) {
    for (size_t i = 0; i < n; ++i) feed(tokens[i], i + 1 == n ? last_logits : nullptr);
  }
};

}  // namespace rwkvlite
