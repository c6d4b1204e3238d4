#include "runtime/store/speed_probe.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "runtime/core/seeded_random.h"
#include "runtime/engine/build_weights.h"
#include "runtime/engine/engine.h"
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

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// A matrix that costs nothing: every output a small constant, so that the rest of the engine
// runs its real work on finite values.
constexpr float kConstantOutput = 0.01f;
class ConstantProjection final : public Projection {
 public:
  ConstantProjection(int64_t rows, int64_t cols) : rows_(rows), cols_(cols) {}
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  void apply(const float*, float* y, ThreadPool&) const override { std::fill(y, y + rows_, kConstantOutput); }
  int64_t storage_bytes() const override { return 0; }

 private:
  int64_t rows_, cols_;
};

class ConstantEmbedding final : public Embedding {
 public:
  ConstantEmbedding(int64_t vocab, int64_t embd) : vocab_(vocab), embd_(embd) {}
  int64_t vocab_size() const override { return vocab_; }
  int64_t n_embd() const override { return embd_; }
  void lookup(int32_t, float* out) const override { std::fill(out, out + embd_, kConstantOutput); }
  int64_t storage_bytes() const override { return 0; }

 private:
  int64_t vocab_, embd_;
};

constexpr int kWarmTokens = 8;
constexpr int kTimedTokens = 32;
constexpr int kWakeRounds = 15;

double time_non_matrix_token(const Model& small_tensors, int threads) {
  WeightProviders providers;
  providers.matrix = [](const std::string&, int64_t rows, int64_t cols) -> std::unique_ptr<Projection> {
    return std::make_unique<ConstantProjection>(rows, cols);
  };
  const ModelDims dims = small_tensors.dims;
  providers.embedding = [dims]() -> std::unique_ptr<Embedding> {
    return std::make_unique<ConstantEmbedding>(dims.n_vocab, dims.n_embd);
  };
  EngineOptions options;
  options.threads = threads;
  Engine engine(build_weights(small_tensors, std::move(providers)), options);
  State state = engine.new_state();
  std::vector<float> logits(static_cast<size_t>(engine.vocab_size()));
  std::vector<double> runs;
  for (int t = 0; t < kWarmTokens + kTimedTokens; ++t) {
    const auto t0 = Clock::now();
    engine.eval_token(0, state, logits.data());
    if (t >= kWarmTokens) runs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return median(std::move(runs));
}

// Release a thread that has been blocked for `blocked` and time how long it takes to run: the
// latency a stream hand-off pays when the other side had to wait.
double time_wake_up(std::chrono::microseconds blocked) {
  std::vector<double> runs;
  for (int r = 0; r < kWakeRounds; ++r) {
    std::mutex mutex;
    std::condition_variable cv;
    bool released = false;
    Clock::time_point sent;
    double woke = 0;
    std::thread waiter([&] {
      std::unique_lock<std::mutex> lock(mutex);
      cv.wait(lock, [&] { return released; });
      woke = std::chrono::duration<double>(Clock::now() - sent).count();
    });
    std::this_thread::sleep_for(blocked);
    {
      std::lock_guard<std::mutex> lock(mutex);
      released = true;
      sent = Clock::now();
    }
    cv.notify_one();
    waiter.join();
    runs.push_back(woke);
  }
  return median(std::move(runs));
}

}  // namespace

EngineOverheads measure_engine_overheads(const Model& small_tensors, int threads) {
  EngineOverheads o;
  o.non_matrix_seconds = time_non_matrix_token(small_tensors, threads);
  o.wake_seconds = time_wake_up(std::chrono::microseconds(1000));
  o.short_wake_seconds = time_wake_up(std::chrono::microseconds(50));
  return o;
}

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
  return cache_[key] = median(std::move(runs));
}

bool is_per_token_matrix(const std::string& name) {
  return layout::is_projection_weight(name) || layout::is_lowrank_factor(name) || layout::is_lora_rows(name);
}

SpeedPrediction predict_elastic_speed(const format::CompactFile& file, int64_t n_layer, MatvecTimer& timer,
                                      const EngineOverheads& overheads, LayerStream* stream,
                                      const StreamOptions& options) {
  SpeedModelInput in;
  const double per_layer = n_layer > 0 ? overheads.non_matrix_seconds / static_cast<double>(n_layer) : 0.0;
  in.layer_compute_seconds.assign(static_cast<size_t>(n_layer), per_layer);
  in.layer_read_seconds.assign(static_cast<size_t>(n_layer), 0.0);
  in.layer_read_cpu_seconds.assign(static_cast<size_t>(n_layer), 0.0);
  in.layer_streamed.assign(static_cast<size_t>(n_layer), false);
  in.pipelined = options.pipelined;
  in.wake_seconds = overheads.wake_seconds;
  in.short_wake_seconds = overheads.short_wake_seconds;
  in.pool_spin_seconds = ThreadPool::kSpinSeconds;
  in.reads_sleep = options.io_bandwidth_bytes_per_second.has_value();
  const unsigned cores = std::thread::hardware_concurrency();
  in.loader_shares_cores = cores > 0 && timer.threads() >= static_cast<int>(cores);
  for (const format::TensorInfo& t : file.tensors()) {
    if (!is_per_token_matrix(t.name)) continue;
    const double s = timer.seconds(t.encoding, t.rows, t.cols);
    const std::optional<int64_t> layer = layout::layer_index(t.name);
    if (layer && *layer < n_layer) in.layer_compute_seconds[static_cast<size_t>(*layer)] += s;
    else in.other_compute_seconds += s;
  }
  if (stream) {
    const double rate = stream->measure_read_rate();
    // A loader without a core of its own shares the cores with the compute threads: its copy
    // takes the fair share's longer (threads + 1 runnable threads on `cores`).
    const double share = in.pipelined && in.loader_shares_cores ? (timer.threads() + 1.0) / static_cast<double>(cores) : 1.0;
    for (int64_t l = 0; l < n_layer; ++l) {
      const int64_t bytes = stream->layer_bytes(l);
      if (bytes == 0) continue;
      const double copy = static_cast<double>(bytes) / rate;
      in.layer_read_cpu_seconds[static_cast<size_t>(l)] = copy;
      double seconds = copy * share;
      if (options.io_bandwidth_bytes_per_second)
        seconds = std::max(seconds, static_cast<double>(bytes) / *options.io_bandwidth_bytes_per_second);
      in.layer_streamed[static_cast<size_t>(l)] = true;
      in.layer_read_seconds[static_cast<size_t>(l)] = seconds;
    }
  }
  return predict_token_speed(in);
}

}  // namespace rwkvlite
