#include "runtime/store/layer_stream.h"

#include <algorithm>
#include <chrono>

#include "runtime/core/error.h"
#include "runtime/format/codec.h"
#include "runtime/store/encoded_projection.h"

namespace rwkvlite {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

LayerStream::LayerStream(std::shared_ptr<const format::CompactFile> file, int64_t first_layer, int64_t n_layer,
                         int64_t slot_bytes, StreamOptions options, std::shared_ptr<ResidencyCounter> counter,
                         std::shared_ptr<StreamStats> stats)
    : file_(std::move(file)),
      first_(first_layer),
      count_(n_layer - first_layer),
      slot_bytes_(slot_bytes),
      options_(options),
      stats_(std::move(stats)),
      layers_(static_cast<size_t>(std::max<int64_t>(count_, 0))) {
  if (count_ < 1 || first_ < 0) throw Error("layer stream: no layer to stream", kExitInternal);
  for (auto& s : slots_) s.resize(static_cast<size_t>(slot_bytes_));
  resident_ = ResidentBytes(std::move(counter), 2 * slot_bytes_);
  stats_->first_streamed_layer = first_;
  stats_->slot_bytes = slot_bytes_;
  stats_->pipelined = options_.pipelined;
  stats_->io_bandwidth_bytes_per_second = options_.io_bandwidth_bytes_per_second;
}

LayerStream::~LayerStream() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (loader_.joinable()) loader_.join();
}

void LayerStream::add(const std::string& tensor, int64_t layer) {
  if (layer < first_ || layer >= first_ + count_)
    throw Error("layer stream: '" + tensor + "' is not in a streamed layer", kExitInternal);
  const format::TensorInfo& t = file_->tensor(tensor);
  auto& list = layers_[static_cast<size_t>(layer - first_)];
  const uint64_t offset = list.empty() ? 0 : list.back().offset + list.back().bytes;
  list.push_back({tensor, offset, t.nbytes, t.rows});
  handles_[tensor] = Handle{layer, offset};
}

void LayerStream::start() {
  for (size_t l = 0; l < layers_.size(); ++l) {
    if (!layers_[l].empty()) order_.push_back(first_ + static_cast<int64_t>(l));
    const uint64_t bytes = layers_[l].empty() ? 0 : layers_[l].back().offset + layers_[l].back().bytes;
    if (bytes > static_cast<uint64_t>(slot_bytes_))
      throw Error("layer stream: layer " + std::to_string(first_ + static_cast<int64_t>(l)) + " holds " +
                  std::to_string(bytes) + " bytes, more than a slot's " + std::to_string(slot_bytes_), kExitInternal);
  }
  stats_->streamed_layers = static_cast<int64_t>(order_.size());
  if (options_.pipelined && !order_.empty()) loader_ = std::thread([this] { loader_main(); });
}

int64_t LayerStream::layer_bytes(int64_t layer) const {
  if (layer < first_ || layer >= first_ + count_) return 0;
  const auto& list = layers_[static_cast<size_t>(layer - first_)];
  return list.empty() ? 0 : static_cast<int64_t>(list.back().offset + list.back().bytes);
}

double LayerStream::measure_read_rate() {
  if (loader_.joinable() || current_ >= 0) throw Error("layer stream: read rate measured after start()", kExitInternal);
  // Every streamed layer in turn, as the loader reads them, until kMinRateReads reads and
  // kMinRateSeconds have passed: one short read is at the mercy of a single preemption.
  constexpr int kMinRateReads = 12;
  constexpr double kMinRateSeconds = 0.005;
  constexpr int kMaxRateReads = 10000;
  int64_t streamed = 0;
  for (int64_t l = first_; l < first_ + count_; ++l) streamed += layer_bytes(l);
  if (streamed == 0) throw Error("layer stream: no streamed layer holds tensors", kExitInternal);
  // One untimed pass first: the first read of a layer also maps its pages in, which the steady
  // state (every layer read each token) does not pay.
  for (const auto& list : layers_)
    for (const Tensor& t : list) file_->read_rows(t.name, 0, t.rows, slots_[0].data() + t.offset);
  int64_t bytes = 0;
  double seconds = 0;
  int reads = 0;
  for (size_t i = 0; reads < kMaxRateReads && (reads < kMinRateReads || seconds < kMinRateSeconds); ++i) {
    const size_t l = i % layers_.size();
    if (layers_[l].empty()) continue;
    const auto start = Clock::now();
    for (const Tensor& t : layers_[l]) file_->read_rows(t.name, 0, t.rows, slots_[0].data() + t.offset);
    seconds += seconds_since(start);
    bytes += layer_bytes(first_ + static_cast<int64_t>(l));
    ++reads;
  }
  return static_cast<double>(bytes) / std::max(seconds, 1e-9);
}

void LayerStream::load_layer(int64_t sequence, uint8_t* slot) {
  const auto start = Clock::now();
  int64_t bytes = 0;
  for (const Tensor& t : layers_[static_cast<size_t>(layer_of_sequence(sequence) - first_)]) {
    file_->read_rows(t.name, 0, t.rows, slot + t.offset);
    bytes += static_cast<int64_t>(t.bytes);
  }
  if (options_.io_bandwidth_bytes_per_second) {
    // A storage device of that bandwidth would have taken bytes / bandwidth: wait out the rest.
    const double target = static_cast<double>(bytes) / *options_.io_bandwidth_bytes_per_second;
    const double spent = seconds_since(start);
    if (target > spent) std::this_thread::sleep_for(std::chrono::duration<double>(target - spent));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  stats_->layer_loads += 1;
  stats_->bytes_read += bytes;
  stats_->read_seconds += seconds_since(start);
}

void LayerStream::loader_main() {
  for (int64_t sequence = 0;; ++sequence) {
    const int s = static_cast<int>(sequence % 2);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || free_[s]; });
      if (stop_) return;
      free_[s] = false;
    }
    try {
      load_layer(sequence, slots_[s].data());
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      changed_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      loaded_[s] = sequence;
    }
    changed_.notify_all();
  }
}

const uint8_t* LayerStream::bytes(const Handle& h) {
  if (order_.empty()) throw Error("layer stream: used before start()", kExitInternal);
  if (current_ >= 0 && layer_of_sequence(current_) == h.layer) return slots_[current_ % 2].data() + h.offset;
  const int64_t next = current_ + 1;
  if (layer_of_sequence(next) != h.layer) {
    throw Error("layer stream: layer " + std::to_string(h.layer) + " used while layer " +
                std::to_string(layer_of_sequence(next)) + " was due (layers must be used in order)", kExitInternal);
  }
  const int s = static_cast<int>(next % 2);
  const auto wait_start = Clock::now();
  if (!options_.pipelined) {
    load_layer(next, slots_[s].data());  // load, then compute
  } else {
    std::unique_lock<std::mutex> lock(mutex_);
    if (current_ >= 0) free_[current_ % 2] = true;  // the previous layer is done with
    changed_.notify_all();
    changed_.wait(lock, [&] { return loaded_[s] == next || error_ != nullptr; });
    if (error_) std::rethrow_exception(error_);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_->stall_seconds += seconds_since(wait_start);
  }
  current_ = next;
  return slots_[s].data() + h.offset;
}

StreamedProjection::StreamedProjection(std::shared_ptr<LayerStream> stream, LayerStream::Handle handle, int64_t rows,
                                       int64_t cols, format::EncodingSpec encoding)
    : stream_(std::move(stream)),
      handle_(handle),
      rows_(rows),
      cols_(cols),
      encoding_(encoding),
      row_bytes_(format::encoded_row_bytes(encoding.encoding, cols, encoding.params)) {}

void StreamedProjection::apply(const float* x, float* y, ThreadPool& pool) const {
  apply_encoded_rows(stream_->bytes(handle_), row_bytes_, rows_, cols_, encoding_, x, y, pool);
}

void StreamedProjection::apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const {
  apply_encoded_rows_batch(stream_->bytes(handle_), row_bytes_, rows_, cols_, encoding_, x, n, y, pool);
}

}  // namespace rwkvlite
