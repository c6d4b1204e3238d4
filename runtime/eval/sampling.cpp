#include "runtime/eval/sampling.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"

namespace rwkvlite {

void require_finite_logits(const float* logits, int64_t n, const std::string& whose, const std::string& where) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(logits[i])) {
      throw InputError(whose + " logits at " + where + " are not finite (logit " + std::to_string(i) + " is " +
                       (std::isnan(logits[i]) ? "NaN" : "Inf") +
                       "): the weights overflow in evaluation; the model file is corrupt or mis-scaled");
    }
  }
}

Sampler::Sampler(uint64_t seed, float temperature, float top_p) : rng_(seed), temperature_(temperature), top_p_(top_p) {
  if (!(temperature >= 0)) throw UsageError("--temperature must be >= 0");
  if (!(top_p > 0 && top_p <= 1)) throw UsageError("--top-p must be in (0, 1]");
}

double Sampler::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int32_t Sampler::sample(const float* logits, int64_t n) {
  if (temperature_ == 0) return static_cast<int32_t>(std::max_element(logits, logits + n) - logits);
  const double mx = *std::max_element(logits, logits + n);
  scratch_.resize(static_cast<size_t>(n));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double p = std::exp((logits[i] - mx) / temperature_);
    scratch_[i] = {p, static_cast<int32_t>(i)};
    sum += p;
  }
  // Most probable first; ties by token id so the order is fully determined.
  std::sort(scratch_.begin(), scratch_.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  double kept = 0;
  size_t k = 0;
  while (k < scratch_.size() && (k == 0 || kept < top_p_ * sum)) kept += scratch_[k++].first;
  double r = uniform() * kept;
  for (size_t i = 0; i < k; ++i) {
    r -= scratch_[i].first;
    if (r < 0) return scratch_[i].second;
  }
  return scratch_[k - 1].second;
}

}  // namespace rwkvlite
