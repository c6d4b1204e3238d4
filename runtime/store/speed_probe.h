// What the elastic planner's speed prediction (runtime/plan/speed_model.h) needs, measured on
// this machine for one selected elastic file: the time of one y = W x per matrix the engine
// multiplies every token, in its stored encoding, with the engine's kernels and thread count;
// and the rate the streamed layers read at. STI profiles each shard's latency on the device the
// same way; the prediction is then made before any token runs, and the report puts the
// measured tokens/s beside it.
//
// The matrices are timed on synthetic rows of the same shape and encoding (cached by shape, so
// a 12-layer model times each shape once), so probing reads none of the file's weights; it holds
// for a moment copies of one synthetic matrix as scratch (at most the plan's per-token bytes or
// 64 MiB, or the largest matrix when that is more), freed before the first token.
// The rest of a token's work (the time-mix recurrence, norms, mixes, activations) is timed on an
// engine of the model's shape whose matrices cost nothing, and the hand-offs of a streamed layer
// by the wake-up latency of a blocked thread; at the reference model's size both are a fifth or
// more of a token.
#pragma once

#include <cstdint>
#include <map>
#include <tuple>

#include "runtime/core/model.h"
#include "runtime/engine/thread_pool.h"
#include "runtime/format/compact_reader.h"
#include "runtime/format/encoding.h"
#include "runtime/plan/speed_model.h"
#include "runtime/store/layer_stream.h"

namespace rwkvlite {

class MatvecTimer {
 public:
  // `working_set_bytes`: the weight bytes the engine touches per token. A matrix is timed in
  // rotation over enough copies of it to cover that many bytes (up to kMaxScratchBytes), so
  // that it comes from the cache level the real run finds it in, not from L1 every time.
  static constexpr int64_t kMaxScratchBytes = int64_t{64} << 20;
  MatvecTimer(int threads, int64_t working_set_bytes) : pool_(threads), working_set_(working_set_bytes) {}
  // Median seconds of one y = W x for a rows x cols matrix in `encoding`.
  double seconds(const format::EncodingSpec& encoding, int64_t rows, int64_t cols);
  int threads() const { return pool_.threads(); }

 private:
  ThreadPool pool_;
  int64_t working_set_;
  std::map<std::tuple<std::string, int64_t, int64_t>, double> cache_;
};

// What a token costs besides its matrix products and reads, measured on this machine.
struct EngineOverheads {
  double non_matrix_seconds = 0;  // per token: everything but the y = W x products
  // A thread blocked on a condition variable, from release to running: after 1 ms blocked (its
  // core gone idle) and after 50 us.
  double wake_seconds = 0;
  double short_wake_seconds = 0;
};
// `small_tensors`: the model's norms, mixes and decays (everything but its big matrices, as
// load_compact_engine decodes them). Builds an engine whose every matrix and embedding row is a
// constant (no weight is read), times its tokens (median of 32 after 8 to warm), and times the
// wake-up of a thread released after 1 ms and after 50 us blocked (medians of 15). About 50 ms
// in all.
EngineOverheads measure_engine_overheads(const Model& small_tensors, int threads);

// Whether the engine multiplies `name` (a stored matrix or factor) by a vector every token:
// projections, the head, low-rank factors and LoRA rows; not the embedding (one row a token).
bool is_per_token_matrix(const std::string& name);

// The predicted speed of `file` as selected (apply_elastic_selection has run): each layer's
// per-token matrices timed with `timer`; when `stream` is given, its layers' reads priced at the
// rate LayerStream::measure_read_rate reports, or at its throttle when that is slower; the
// overheads spread evenly over the layers (non-matrix work) and on every hand-off (wake-ups).
SpeedPrediction predict_elastic_speed(const format::CompactFile& file, int64_t n_layer, MatvecTimer& timer,
                                      const EngineOverheads& overheads, LayerStream* stream,
                                      const StreamOptions& options);

}  // namespace rwkvlite
