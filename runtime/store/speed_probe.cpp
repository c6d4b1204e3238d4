#include "runtime/store/speed_probe.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

#include "runtime/core/seeded_random.h"
#include "runtime/format/codec.h"
#include "runtime/format/layout.h"
#include "runtime/store/encoded_projection.h"

namespace rwkvlite {

namespace {

using Clock = std::chrono::steady_clock;

// Each shape is timed over at least this long (and kMinRuns runs): short enough that probing a
// plan takes well under a second, long enough that one preempted run does not decide it.
constexpr double kMinProbeSeconds = 0.02;
constexpr int kMinRuns = 5;
constexpr int kMaxRuns = 1000;
constexpr int64_t kMaxCopies = 1024;

}  // namespace

double MatvecTimer::seconds(const format::EncodingSpec& encoding, int64_t rows, int64_t cols) {
  const auto key = std::make_tuple(format::encoding_name(encoding), rows, cols);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  // Weight-like values (the quantizers' scales depend on them, their speed does not).
  SeededRandom random(static_cast<uint64_t>(rows) * 1000003u + static_cast<uint64_t>(cols));
  std::vector<float> values(static_cast<size_t>(rows * cols));
  for (float& v : values) v = static_cast<float>(random.uniform(-0.1, 0.1));
  const std::vector<uint8_t> one = format::encode_rows(values.data(), rows, cols, encoding);
  values.clear();
  values.shrink_to_fit();
  const int64_t matrix_bytes = std::max<int64_t>(static_cast<int64_t>(one.size()), 1);
  const int64_t covered = std::min(working_set_, kMaxScratchBytes);
  const int64_t copies = std::clamp<int64_t>((covered + matrix_bytes - 1) / matrix_bytes, 1, kMaxCopies);
  std::vector<uint8_t> bytes;
  bytes.reserve(one.size() * static_cast<size_t>(copies));
  for (int64_t c = 0; c < copies; ++c) bytes.insert(bytes.end(), one.begin(), one.end());
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  const size_t row_bytes = format::encoded_row_bytes(encoding, cols);
  auto copy = [&](size_t run) { return bytes.data() + (run % static_cast<size_t>(copies)) * one.size(); };
  for (int64_t c = 0; c < copies; ++c)  // warm: every copy once, as the run before it would have
    apply_encoded_rows(copy(static_cast<size_t>(c)), row_bytes, rows, cols, encoding, x.data(), y.data(), pool_);
  std::vector<double> runs;
  double total = 0;
  while ((total < kMinProbeSeconds || runs.size() < kMinRuns) && runs.size() < kMaxRuns) {
    const auto t0 = Clock::now();
    apply_encoded_rows(copy(runs.size()), row_bytes, rows, cols, encoding, x.data(), y.data(), pool_);
    runs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    total += runs.back();
  }
  std::nth_element(runs.begin(), runs.begin() + static_cast<std::ptrdiff_t>(runs.size() / 2), runs.end());
  return cache_[key] = runs[runs.size() / 2];
}

bool is_per_token_matrix(const std::string& name) {
  return layout::is_projection_weight(name) || layout::is_lowrank_factor(name) || layout::is_lora_rows(name);
}

SpeedPrediction predict_elastic_speed(const format::CompactFile& file, int64_t n_layer, MatvecTimer& timer,
                                      LayerStream* stream, const StreamOptions& options) {
  SpeedModelInput in;
  in.layer_compute_seconds.assign(static_cast<size_t>(n_layer), 0.0);
  in.layer_read_seconds.assign(static_cast<size_t>(n_layer), 0.0);
  in.layer_streamed.assign(static_cast<size_t>(n_layer), false);
  in.pipelined = options.pipelined;
  for (const format::TensorInfo& t : file.tensors()) {
    if (!is_per_token_matrix(t.name)) continue;
    const double s = timer.seconds(t.encoding, t.rows, t.cols);
    const std::optional<int64_t> layer = layout::layer_index(t.name);
    if (layer && *layer < n_layer) in.layer_compute_seconds[static_cast<size_t>(*layer)] += s;
    else in.other_compute_seconds += s;
  }
  if (stream) {
    const double rate = stream->measure_read_rate();
    for (int64_t l = 0; l < n_layer; ++l) {
      const int64_t bytes = stream->layer_bytes(l);
      if (bytes == 0) continue;
      double seconds = static_cast<double>(bytes) / rate;
      if (options.io_bandwidth_bytes_per_second)
        seconds = std::max(seconds, static_cast<double>(bytes) / *options.io_bandwidth_bytes_per_second);
      in.layer_streamed[static_cast<size_t>(l)] = true;
      in.layer_read_seconds[static_cast<size_t>(l)] = seconds;
    }
  }
  return predict_token_speed(in);
}

}  // namespace rwkvlite
