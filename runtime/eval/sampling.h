// Temperature / top-p sampling with a seeded generator whose output does not depend on the
// standard library (std::*_distribution differs between implementations), so a seed gives
// the same text everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace rwkvlite {

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
