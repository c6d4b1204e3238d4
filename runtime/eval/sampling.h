// Temperature / top-p sampling with a seeded generator whose output does not depend on the
// standard library (std::*_distribution differs between implementations), so a seed gives
// the same text everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace rwkvlite {

// Throws InputError "<whose> logits at <where> are not finite (...)" when any of the n logits is
// NaN or Inf: finite weights can still overflow, and bits per byte or a sample computed from
// such logits would be NaN or garbage reported as a success.
void require_finite_logits(const float* logits, int64_t n, const std::string& whose, const std::string& where);

class Sampler {
 public:
  Sampler(uint64_t seed, float temperature, float top_p);
  // Greedy (argmax) when temperature is 0.
  int32_t sample(const float* logits, int64_t n);

 private:
  double uniform();  // [0, 1) from the raw 64-bit engine output
  std::mt19937_64 rng_;
  float temperature_, top_p_;
  std::vector<std::pair<double, int32_t>> scratch_;
};

}  // namespace rwkvlite
