// Streamed layers: the elastic runtime's way below the budget that holding every matrix needs
// (runtime/plan/stream_planner.h). The chosen forms of layers [first, n_layer) are not held;
// each token reads them again, a layer at a time, into one of two slots of slot_bytes each.
// Pipelined, a loader thread fills the next layer's slot while the engine computes from the
// current one (STI's overlap of loading with compute; the first layers, resident, are its
// preload buffer, during which the loader already reads the first streamed layer). Sequential,
// the engine reads each layer itself when it first needs it (load, then compute), for
// comparison. Every read verifies its checksums; --io-bandwidth throttles the reads to emulate
// flash storage, since a file in the page cache reads at memory speed.
//
// The engine uses layers in order, and each streamed layer's matrices only between its first
// use and the next layer's, in token mode and sequence mode alike: a layer's slot is released
// when the next layer is first used, so exactly two slots are ever held (2 x slot_bytes,
// counted as resident weight bytes for the stream's whole life).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/engine/projection.h"
#include "runtime/format/compact_reader.h"
#include "runtime/format/encoding.h"
#include "runtime/store/residency.h"

namespace rwkvlite {

struct StreamOptions {
  bool pipelined = true;
  std::optional<double> io_bandwidth_bytes_per_second;  // none: as fast as the file reads
};

// What streaming did, for the report. Written by the engine's thread and the loader under the
// stream's lock; read after the run.
struct StreamStats {
  int64_t first_streamed_layer = 0;  // K: layers below it are resident (the preload buffer)
  int64_t streamed_layers = 0;
  int64_t slot_bytes = 0;
  int64_t slots = 2;
  bool pipelined = true;
  std::optional<double> io_bandwidth_bytes_per_second;
  int64_t layer_loads = 0;      // layers read from the file
  int64_t bytes_read = 0;       // their bytes
  double read_seconds = 0;      // reading them, throttle included (on the loader, when pipelined)
  double stall_seconds = 0;     // the engine waiting for a layer (sequential: its whole read)
};

class LayerStream {
 public:
  LayerStream(std::shared_ptr<const format::CompactFile> file, int64_t first_layer, int64_t n_layer, int64_t slot_bytes,
              StreamOptions options, std::shared_ptr<ResidencyCounter> counter, std::shared_ptr<StreamStats> stats);
  ~LayerStream();
  LayerStream(const LayerStream&) = delete;
  LayerStream& operator=(const LayerStream&) = delete;

  // Where a tensor lives in its layer's slot.
  struct Handle {
    int64_t layer = 0;
    uint64_t offset = 0;
  };
  // Whether `tensor` is read through the stream (registered by the caller before building).
  bool streams(const std::string& tensor) const { return handles_.contains(tensor); }
  // Registers a tensor of a streamed layer; before start(). Error when the layer is not streamed.
  void add(const std::string& tensor, int64_t layer);
  Handle handle(const std::string& tensor) const { return handles_.at(tensor); }
  // Checks every layer fits a slot and starts the loader (pipelined). After the engine is built.
  void start();
  // The registered bytes of `layer` (0 unless it is streamed and holds tensors).
  int64_t layer_bytes(int64_t layer) const;
  // Bytes per second reading the streamed layers into a slot, checksums verified and not
  // throttled: each in turn after one untimed pass, at least 12 reads and 5 ms in all (the
  // steady state reads from the page cache). Before start(); not counted in StreamStats. For
  // the speed prediction (runtime/store/speed_probe.h).
  double measure_read_rate();

  // The bytes of `h` for the engine's current use of its layer, waiting for the layer to be
  // loaded. Error (not a hang) when layers are used out of order; rethrows a read error.
  const uint8_t* bytes(const Handle& h);

 private:
  struct Tensor {
    std::string name;
    uint64_t offset = 0, bytes = 0;
    int64_t rows = 0;
  };
  void load_layer(int64_t sequence, uint8_t* slot);  // reads one layer (sequence -> layer) into a slot
  void loader_main();
  // The layers with registered tensors, in order, cycle once per token.
  int64_t layer_of_sequence(int64_t sequence) const {
    return order_[static_cast<size_t>(sequence % static_cast<int64_t>(order_.size()))];
  }

  std::shared_ptr<const format::CompactFile> file_;
  int64_t first_, count_, slot_bytes_;
  StreamOptions options_;
  std::shared_ptr<StreamStats> stats_;
  std::vector<std::vector<Tensor>> layers_;  // per streamed layer, in registration order
  std::vector<int64_t> order_;               // streamed layers that hold tensors (set by start())
  std::map<std::string, Handle> handles_;
  std::vector<uint8_t> slots_[2];
  ResidentBytes resident_;

  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t loaded_[2] = {-1, -1};  // the sequence number each slot holds (-1: none)
  bool free_[2] = {true, true};
  int64_t current_ = -1;          // the sequence number the engine uses
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread loader_;
};

// A matrix of a streamed layer: rows x cols in its stored encoding, multiplied with the same
// fused kernels as EncodedProjection, from the stream's slot.
class StreamedProjection final : public Projection {
 public:
  StreamedProjection(std::shared_ptr<LayerStream> stream, LayerStream::Handle handle, int64_t rows, int64_t cols,
                     format::EncodingSpec encoding);
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  void apply(const float* x, float* y, ThreadPool& pool) const override;
  void apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const override;
  int64_t storage_bytes() const override { return rows_ * static_cast<int64_t>(row_bytes_); }

 private:
  std::shared_ptr<LayerStream> stream_;
  LayerStream::Handle handle_;
  int64_t rows_, cols_;
  format::EncodingSpec encoding_;
  size_t row_bytes_;
};

}  // namespace rwkvlite
