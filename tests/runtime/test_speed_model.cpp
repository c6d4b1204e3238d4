// The elastic planner's speed model against schedules worked out by hand: resident plans run
// at their compute time, sequential streaming adds every read, and the pipelined two-slot
// stream hides a read behind the compute it overlaps and is bound by the loader otherwise.
#include <catch2/catch.hpp>

#include <limits>

#include "runtime/core/error.h"
#include "runtime/plan/speed_model.h"

using namespace rwkvlite;
using Catch::Matchers::WithinRel;

namespace {

// n layers of `compute` seconds each, layers [first, n) streamed at `read` seconds each.
SpeedModelInput uniform(int n, int first, double compute, double read, double other, bool pipelined) {
  SpeedModelInput in;
  for (int l = 0; l < n; ++l) {
    in.layer_compute_seconds.push_back(compute);
    in.layer_streamed.push_back(l >= first);
    in.layer_read_seconds.push_back(l >= first ? read : 0.0);
  }
  in.other_compute_seconds = other;
  in.pipelined = pipelined;
  return in;
}

}  // namespace

TEST_CASE("speed model: resident and sequential plans", "[plan][speed]") {
  const SpeedPrediction resident = predict_token_speed(uniform(6, 6, 1e-3, 0, 2e-3, true));
  CHECK_THAT(resident.seconds_per_token, WithinRel(8e-3, 1e-12));
  CHECK(resident.stall_seconds == 0);
  CHECK(resident.read_seconds == 0);
  CHECK_THAT(resident.tokens_per_second(), WithinRel(125.0, 1e-12));

  // Load, then compute: every read is a stall.
  const SpeedPrediction sequential = predict_token_speed(uniform(6, 2, 1e-3, 3e-3, 2e-3, false));
  CHECK_THAT(sequential.seconds_per_token, WithinRel(8e-3 + 4 * 3e-3, 1e-12));
  CHECK_THAT(sequential.stall_seconds, WithinRel(12e-3, 1e-12));
  CHECK_THAT(sequential.stall_fraction(), WithinRel(0.6, 1e-12));
}

TEST_CASE("speed model: the pipelined two-slot stream", "[plan][speed]") {
  // Reads shorter than a layer's compute hide behind it; the first streamed layer's read
  // overlaps the preload layers and the head, so nothing stalls.
  const SpeedPrediction hidden = predict_token_speed(uniform(6, 2, 1e-3, 0.5e-3, 2e-3, true));
  CHECK_THAT(hidden.seconds_per_token, WithinRel(8e-3, 1e-9));
  CHECK(hidden.stall_seconds < 1e-12);
  CHECK_THAT(hidden.read_seconds, WithinRel(2e-3, 1e-12));

  // Reads longer than compute: the loader is the bottleneck. It may start a layer's read only
  // once the layer before it is in use, so the four 3 ms reads run back to back except that
  // layer 2's read (started when layer 5 begins) also covers layer 5, the head and layers 0
  // and 1: 1 + 2 + 2 = 5 ms of compute against 3 ms of reading. A token then takes
  // 3 reads x 3 ms + 5 ms = 14 ms, of which 14 - 8 = 6 ms are stalls (2 ms before layers 3-5).
  const SpeedPrediction bound = predict_token_speed(uniform(6, 2, 1e-3, 3e-3, 2e-3, true));
  CHECK_THAT(bound.seconds_per_token, WithinRel(14e-3, 1e-9));
  CHECK_THAT(bound.stall_seconds, WithinRel(14e-3 - 8e-3, 1e-9));
  // Pipelining beats load-then-compute at the same reads.
  const SpeedPrediction sequential = predict_token_speed(uniform(6, 2, 1e-3, 3e-3, 2e-3, false));
  CHECK(bound.seconds_per_token < sequential.seconds_per_token);

  // Every layer streamed (no preload buffer): layer 0's read can only overlap layer 5 and the head.
  const SpeedPrediction all = predict_token_speed(uniform(6, 0, 1e-3, 0.5e-3, 2e-3, true));
  CHECK_THAT(all.seconds_per_token, WithinRel(8e-3, 1e-9));
  // One streamed layer (both slots alternate on it), read for 5 ms against 4 ms of compute: its
  // next read starts as soon as it is in use, so a token takes the read alone.
  const SpeedPrediction one = predict_token_speed(uniform(3, 2, 1e-3, 5e-3, 1e-3, true));
  CHECK_THAT(one.seconds_per_token, WithinRel(5e-3, 1e-9));
  CHECK_THAT(one.stall_seconds, WithinRel(1e-3, 1e-9));
}

TEST_CASE("speed model: hand-off wake-ups and a loader without a core of its own", "[plan][speed]") {
  // Throttled load-then-compute: each of the 4 streamed layers sleeps out a 3 ms read, longer
  // than the pool's 0.2 ms spin, so the engine and then its workers wake: 2 x 0.1 ms a layer.
  SpeedModelInput in = uniform(6, 2, 1e-3, 3e-3, 2e-3, false);
  in.wake_seconds = 0.1e-3;
  in.pool_spin_seconds = 0.2e-3;
  CHECK_THAT(predict_token_speed(in).seconds_per_token, WithinRel(20e-3, 1e-12));  // reads do not sleep
  in.reads_sleep = true;
  CHECK_THAT(predict_token_speed(in).seconds_per_token, WithinRel(20.8e-3, 1e-12));

  // One streamed layer read for 5 ms against 4 ms of compute, pipelined. In the steady state its
  // read ends at L; the engine, waiting since before L, starts the layer at L + 0.2 ms (its wake
  // and its workers'); the loader, waiting for that slot, starts the next read at L + 0.3 ms.
  // A token takes 5.3 ms, 1.3 ms of it stalled.
  in = uniform(3, 2, 1e-3, 5e-3, 1e-3, true);
  in.wake_seconds = 0.1e-3;
  in.short_wake_seconds = 0.1e-3;
  in.pool_spin_seconds = 0.2e-3;
  const SpeedPrediction woken = predict_token_speed(in);
  CHECK_THAT(woken.seconds_per_token, WithinRel(5.3e-3, 1e-9));
  CHECK_THAT(woken.stall_seconds, WithinRel(1.3e-3, 1e-9));

  // Reads that hide behind compute, but whose 0.5 ms copies take a core from it: 8 ms of
  // compute becomes 8 + 4 x 0.5 ms, still without a stall.
  in = uniform(6, 2, 1e-3, 0.5e-3, 2e-3, true);
  in.layer_read_cpu_seconds = {0, 0, 0.5e-3, 0.5e-3, 0.5e-3, 0.5e-3};
  CHECK_THAT(predict_token_speed(in).seconds_per_token, WithinRel(8e-3, 1e-9));
  in.loader_shares_cores = true;
  const SpeedPrediction shared = predict_token_speed(in);
  CHECK_THAT(shared.seconds_per_token, WithinRel(10e-3, 1e-9));
  CHECK(shared.stall_seconds < 1e-12);
}

TEST_CASE("speed model: malformed input", "[plan][speed]") {
  SpeedModelInput in = uniform(3, 1, 1e-3, 1e-3, 0, true);
  in.layer_read_seconds.pop_back();
  CHECK_THROWS_AS(predict_token_speed(in), UsageError);
  in = uniform(3, 1, 1e-3, 1e-3, 0, true);
  in.layer_compute_seconds[1] = -1;
  CHECK_THROWS_AS(predict_token_speed(in), UsageError);
  in = uniform(3, 1, 1e-3, 1e-3, 0, true);
  in.other_compute_seconds = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(predict_token_speed(in), UsageError);
  in = uniform(3, 1, 1e-3, 1e-3, 0, true);
  in.layer_read_cpu_seconds = {1e-3};
  CHECK_THROWS_AS(predict_token_speed(in), UsageError);
  in = uniform(3, 1, 1e-3, 1e-3, 0, true);
  in.wake_seconds = -1e-6;
  CHECK_THROWS_AS(predict_token_speed(in), UsageError);
}
