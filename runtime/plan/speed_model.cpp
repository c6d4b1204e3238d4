#include "runtime/plan/speed_model.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"

namespace rwkvlite {

nlohmann::ordered_json SpeedPrediction::to_json() const {
  return {{"tokens_per_second", tokens_per_second()},
          {"ms_per_token", 1e3 * seconds_per_token},
          {"compute_ms_per_token", 1e3 * compute_seconds},
          {"read_ms_per_token", 1e3 * read_seconds},
          {"stall_fraction", stall_fraction()}};
}

namespace {

// Tokens replayed: the first ones start with both slots empty; from the third on every token
// sees the same schedule, and the last ones are averaged.
constexpr int kWarmTokens = 4;
constexpr int kMeasuredTokens = 4;

void check_time(double t, const char* what) {
  if (!std::isfinite(t) || t < 0) throw UsageError(std::string("speed model: a ") + what + " time is negative or not finite");
}

}  // namespace

SpeedPrediction predict_token_speed(const SpeedModelInput& in) {
  const size_t n = in.layer_compute_seconds.size();
  const bool has_cpu = !in.layer_read_cpu_seconds.empty();
  if (in.layer_read_seconds.size() != n || in.layer_streamed.size() != n || (has_cpu && in.layer_read_cpu_seconds.size() != n))
    throw UsageError("speed model: per-layer compute, read and streamed lists differ in length");
  for (size_t l = 0; l < n; ++l) {
    check_time(in.layer_compute_seconds[l], "compute");
    check_time(in.layer_read_seconds[l], "read");
    if (has_cpu) check_time(in.layer_read_cpu_seconds[l], "read");
  }
  check_time(in.other_compute_seconds, "compute");
  check_time(in.wake_seconds, "wake-up");
  check_time(in.short_wake_seconds, "wake-up");
  check_time(in.pool_spin_seconds, "spin");

  SpeedPrediction p;
  std::vector<size_t> order;  // the streamed layers, in the order the stream cycles through them
  std::vector<double> compute = in.layer_compute_seconds;
  for (size_t l = 0; l < n; ++l) {
    if (in.layer_streamed[l]) {
      order.push_back(l);
      p.read_seconds += in.layer_read_seconds[l];
      // The loader's copy runs on a core the engine's threads were using.
      if (in.pipelined && in.loader_shares_cores && has_cpu) compute[l] += in.layer_read_cpu_seconds[l];
    }
    p.compute_seconds += compute[l];
  }
  p.compute_seconds += in.other_compute_seconds;
  // After a pause of `wait`, a thread resumes this much later; the engine's workers too.
  auto wake = [&](double wait) {
    return wait <= 0 ? 0.0 : wait > in.pool_spin_seconds ? in.wake_seconds : in.short_wake_seconds;
  };
  auto resume = [&](double wait) { return wake(wait) + (wait > in.pool_spin_seconds ? in.wake_seconds : 0.0); };
  if (!in.pipelined || order.empty()) {
    // Each streamed layer waits for its whole read, and after a throttled one for the wake-ups.
    p.stall_seconds = p.read_seconds;
    for (size_t l : order) p.stall_seconds += in.reads_sleep ? resume(in.layer_read_seconds[l]) : 0;
    p.seconds_per_token = p.compute_seconds + p.stall_seconds;
    return p;
  }

  // Streamed layer s (counted over all tokens) goes into slot s % 2. The loader reads in order,
  // one layer at a time; it may start s >= 2 only once the engine has begun layer s - 1.
  double engine = 0, stall = 0, token_start = 0;
  std::vector<double> load_end, compute_start;
  auto load = [&](size_t s) {
    const double ready = s == 0 ? 0 : load_end[s - 1];
    // A loader that found no free slot slept until the engine released one.
    const double start = s >= 2 && compute_start[s - 1] > ready ? compute_start[s - 1] + wake(compute_start[s - 1] - ready) : ready;
    load_end.push_back(start + in.layer_read_seconds[order[s % order.size()]]);
  };
  size_t s = 0;
  for (int token = 0; token < kWarmTokens + kMeasuredTokens; ++token) {
    if (token == kWarmTokens) {
      token_start = engine;
      stall = 0;
    }
    for (size_t l = 0; l < n; ++l) {
      if (in.layer_streamed[l]) {
        // Layer s's read could start once layer s - 1 was begun, which has happened by now.
        while (load_end.size() <= s) load(load_end.size());
        const double wait = std::max(0.0, load_end[s] - engine);
        const double start = engine + wait + resume(wait);
        stall += start - engine;
        engine = start;
        compute_start.push_back(engine);
        ++s;
      }
      engine += compute[l];
    }
    engine += in.other_compute_seconds;
  }
  p.seconds_per_token = (engine - token_start) / kMeasuredTokens;
  p.stall_seconds = stall / kMeasuredTokens;
  return p;
}

}  // namespace rwkvlite
