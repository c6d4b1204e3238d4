#include "tools/common/timed_predictor.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace rwkvlite::tools {

void TimedPredictor::feed(int32_t token, float* logits) {
  const auto t0 = std::chrono::steady_clock::now();
  inner_.feed(token, logits);
  feed_ms_.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
}

double TimedPredictor::quantile_ms(double q) const {
  if (feed_ms_.empty()) return 0.0;
  std::vector<double> sorted = feed_ms_;
  std::sort(sorted.begin(), sorted.end());
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (rank - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace rwkvlite::tools
