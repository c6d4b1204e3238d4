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
// Work the model does not price: the time-mix recurrence, norms and mixes (elementwise, small
// beside the projections) and the per-token thread wake-ups; the report shows what is left.
#pragma once

#include <cstdint>
#include <map>
#include <tuple>

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

 private:
  ThreadPool pool_;
  int64_t working_set_;
  std::map<std::tuple<std::string, int64_t, int64_t>, double> cache_;
};

// Whether the engine multiplies `name` (a stored matrix or factor) by a vector every token:
// projections, the head, low-rank factors and LoRA rows; not the embedding (one row a token).
bool is_per_token_matrix(const std::string& name);

// The predicted speed of `file` as selected (apply_elastic_selection has run): each layer's
// per-token matrices timed with `timer`; when `stream` is given, its layers' reads priced at the
// rate LayerStream::measure_read_rate reports, or at its throttle when that is slower.
SpeedPrediction predict_elastic_speed(const format::CompactFile& file, int64_t n_layer, MatvecTimer& timer,
                                      LayerStream* stream, const StreamOptions& options);

}  // namespace rwkvlite
