// A seeded pseudo-random generator whose output is fixed by this file alone.
//
// The standard library's distributions (uniform_real_distribution, normal_distribution,
// shuffle) are implementation-defined, so the same seed gives different numbers on libstdc++
// and libc++. Everything random in compression (k-means++ seeding, synthetic checkpoints) draws
// from this generator instead, so outputs are byte-identical on every platform.
//
// xoshiro256** (Blackman & Vigna) with its state filled by splitmix64 from the 64-bit seed.
#pragma once

#include <cmath>
#include <cstdint>

namespace rwkvlite {

class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t& word : state_) word = splitmix64(s);
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1): the top 53 bits as a double's mantissa, exactly representable.
  double next_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  // Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * next_double(); }

  // Uniform integer in [0, n), n >= 1, without modulo bias (rejection of the short last lap).
  uint64_t next_below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v = next_u64();
    while (v >= limit) v = next_u64();
    return v % n;
  }

  // Standard normal by Box-Muller, both outputs used; std::log/cos/sin are correctly rounded
  // enough on the supported platforms that the float written from it is stable.
  double next_normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - next_double();  // (0, 1]: log is finite
    const double u2 = next_double();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * 3.14159265358979323846 * u2;
    spare_ = r * std::sin(angle);
    has_spare_ = true;
    return r * std::cos(angle);
  }

  // One step of splitmix64: advances `s` and returns a well-mixed word (also usable alone to
  // derive independent seeds from one seed).
  static uint64_t splitmix64(uint64_t& s) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t state_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace rwkvlite
