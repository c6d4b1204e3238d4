// Per-token latency, measured: wraps a TokenPredictor and times every feed (one token through
// the model, with its logits when asked), so a report can give the median and the 90th
// percentile of the milliseconds one token takes instead of deriving them from tokens/s.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/eval/token_predictor.h"

namespace rwkvlite::tools {

class TimedPredictor final : public TokenPredictor {
 public:
  explicit TimedPredictor(TokenPredictor& inner) : inner_(inner) {}

  int64_t vocab_size() const override { return inner_.vocab_size(); }
  void reset() override { inner_.reset(); }
  void feed(int32_t token, float* logits) override;

  // The q-quantile (0 <= q <= 1) of the feeds' durations in milliseconds, interpolating
  // linearly between the two nearest ranks; 0 when nothing was fed.
  double quantile_ms(double q) const;
  int64_t feeds() const { return static_cast<int64_t>(feed_ms_.size()); }

 private:
  TokenPredictor& inner_;
  std::vector<double> feed_ms_;
};

}  // namespace rwkvlite::tools
