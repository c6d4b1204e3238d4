// The elastic planner's speed prediction: seconds per token of a plan, before it runs, from the
// measured compute time of each layer's chosen forms and the read time of each streamed layer
// (runtime/store/speed_probe.h measures both on this machine). Pipelined, the layer stream
// (runtime/store/layer_stream.h) reads layer s + 1 into the second slot while layer s computes,
// and may start it only once layer s is in use (its slot is released then); sequential, each
// streamed layer is read and then computed. This model replays exactly that schedule, event by
// event, over enough tokens to reach the steady state, so a stall predicted here is one the
// stream would show. Pure arithmetic, deterministic.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace rwkvlite {

struct SpeedModelInput {
  std::vector<double> layer_compute_seconds;  // per layer: its matrices and its other work
  std::vector<double> layer_read_seconds;     // per layer: reading its streamed forms (0: resident)
  std::vector<bool> layer_streamed;           // per layer: read through the stream every token
  double other_compute_seconds = 0;           // per token outside the layers: embedding, head
  bool pipelined = true;
  // Costs of the hand-offs themselves, which at a small model's size are not small beside a
  // layer's compute. A thread blocked on the other (the engine on a read, the loader on a free
  // slot, or the engine sleeping out a throttled read) resumes short_wake_seconds after it is
  // released, or wake_seconds when the pause outlasted pool_spin_seconds (its core had gone
  // idle); such a pause has also put the engine's pool workers to sleep, and the layer's first
  // product waits wake_seconds more for them.
  double wake_seconds = 0;
  double short_wake_seconds = 0;
  double pool_spin_seconds = 0;
  bool reads_sleep = false;  // reads are throttled: each ends in a sleep on the reading thread
  // Per layer, the CPU time of a streamed read (the copy from the page cache). When the loader
  // has no core of its own (compute threads >= cores), that time is taken from the engine's.
  std::vector<double> layer_read_cpu_seconds;
  bool loader_shares_cores = false;
};

struct SpeedPrediction {
  double seconds_per_token = 0;
  double compute_seconds = 0;  // per token
  double read_seconds = 0;     // per token, on the loader when pipelined
  double stall_seconds = 0;    // per token, the engine waiting for a layer (sequential: the reads)

  double tokens_per_second() const { return seconds_per_token > 0 ? 1.0 / seconds_per_token : 0; }
  double stall_fraction() const { return seconds_per_token > 0 ? stall_seconds / seconds_per_token : 0; }
  // {tokens_per_second, ms_per_token, compute_ms_per_token, read_ms_per_token, stall_fraction}
  nlohmann::ordered_json to_json() const;
};

// UsageError when the per-layer vectors differ in size or hold a negative or non-finite time.
SpeedPrediction predict_token_speed(const SpeedModelInput& input);

}  // namespace rwkvlite
