// The elastic runtime's choice at load time: for an elastic compact file (metadata "elastic",
// runtime/format/elastic_meta.h) and a memory budget, one stored form per matrix, chosen by the
// budget planner (runtime/plan/budget_planner.h) over the profile's predicted costs so that the
// chosen bytes plus everything else the runtime holds fit the budget; and the file view that
// makes the chosen forms answer to the matrices' names.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/format/compact_reader.h"
#include "runtime/format/elastic_meta.h"
#include "runtime/plan/speed_model.h"

namespace rwkvlite {

// How the chosen forms of layers [first_streamed_layer, n_layer) pass through the layer stream
// (runtime/store/layer_stream.h) when holding them all does not fit the budget.
struct StreamingPlan {
  int64_t first_streamed_layer = 0;  // K: layers below it are resident (the preload buffer)
  int64_t slot_bytes = 0;            // each of the two slots
  int64_t streamed_bytes_per_token = 0;
};

struct ElasticSelection {
  std::optional<int64_t> budget_bytes;  // none: every matrix at its largest stored form
  int64_t fixed_bytes = 0;    // what the runtime holds besides the elastic matrices (an upper bound)
  // The elastic matrices' resident bytes: the chosen forms held, plus the two slots when streaming.
  int64_t elastic_bytes = 0;
  std::optional<StreamingPlan> streaming;
  double predicted_kl_bits_per_byte = 0;  // sum of the chosen forms' costs
  // Predicted before the first token (runtime/store/speed_probe.h); set when a budget was given.
  std::optional<SpeedPrediction> predicted_speed;
  layout::ElasticMeta meta;
  std::vector<size_t> chosen;  // per meta.items entry, the index of its choice

  int64_t planned_bytes() const { return fixed_bytes + elastic_bytes; }
  // {budget_bytes, fixed_bytes, elastic_bytes, planned_bytes, predicted_kl_bits_per_byte,
  //  predicted_increase_percent, method, streaming: {first_streamed_layer, slot_bytes,
  //  streamed_bytes_per_token} or null, predicted_speed: SpeedPrediction::to_json() or null,
  //  fidelity_counts: {fidelity: n}, matrices: {name: fidelity}}
  nlohmann::ordered_json to_json() const;
};

// Checks the metadata against the file (every listed tensor exists, each choice's bytes are its
// tensors' stored bytes, every stored form belongs to one choice: InputError otherwise), then
// plans. `fixed_bytes` is what the runtime holds besides the elastic matrices. Every matrix
// resident when that fits the budget (and `stream` is false); otherwise layers streamed
// (runtime/plan/stream_planner.h). ResourceError when not even streaming fits, saying how many
// bytes the least plan needs; UsageError for `stream` without a budget.
ElasticSelection select_elastic_forms(const format::CompactFile& file, const layout::ElasticMeta& meta,
                                      int64_t fixed_bytes, std::optional<int64_t> budget_bytes, int64_t n_layer,
                                      bool stream = false);

// Makes the chosen forms of `file` answer to their matrices' names and hides the others.
void apply_elastic_selection(format::CompactFile& file, const ElasticSelection& selection);

}  // namespace rwkvlite
