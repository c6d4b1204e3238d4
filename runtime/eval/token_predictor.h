// The one thing evaluation needs from a model: feed a token, get next-token logits.
//
// Dense engines, compressed runtimes and reference models all adapt to this, so the metrics
// (bits per byte, top-1, agreement, KL) are computed by one piece of code for every model.
#pragma once

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
};

}  // namespace rwkvlite
