// What the on-demand parts of a compact-file engine did: rows read, cache hits, neurons and
// clusters selected, resident bytes by part. Filled by the components as they run, read by
// rwkvlite-run for its report and by tests.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/store/layer_stream.h"
#include "runtime/store/residency.h"

namespace rwkvlite {

// Resident weight bytes: the total, and four parts whose counters add into it.
struct ResidencyByPart {
  std::shared_ptr<ResidencyCounter> total = std::make_shared<ResidencyCounter>();
  std::shared_ptr<ResidencyCounter> ffn = std::make_shared<ResidencyCounter>(total);  // channel-mix key/value + predictors
  std::shared_ptr<ResidencyCounter> head = std::make_shared<ResidencyCounter>(total);
  std::shared_ptr<ResidencyCounter> embedding = std::make_shared<ResidencyCounter>(total);
  std::shared_ptr<ResidencyCounter> other = std::make_shared<ResidencyCounter>(total);
};

struct SparseFfnLayerStats {
  int64_t layer = 0;
  int64_t width = 0;             // F
  int64_t cache_rows = 0;        // neurons the layer's cache may hold
  bool has_predictor = false;
  int64_t tokens = 0;
  int64_t neurons_selected = 0;  // summed over tokens
  int64_t rows_read = 0;         // neurons (key + value row) read from the file
  int64_t cache_hits = 0, cache_misses = 0;
  int64_t resident_peak_bytes = 0;  // this layer's neuron cache and predictor
  // Audit mode only (exact pre-activations of every neuron, from a private uncounted copy).
  int64_t audit_tokens = 0;
  int64_t active = 0;               // neurons with k·x > 0, summed over tokens
  int64_t active_and_selected = 0;
};

struct ClusteredHeadStats {
  int64_t clusters = 0;    // K
  int64_t cache_rows = 0;
  int64_t calls = 0;       // tokens whose logits were computed
  int64_t clusters_kept = 0;
  int64_t rows_scored = 0; // head rows dotted with x (the kept clusters' sizes), summed over calls
  int64_t rows_read = 0;   // head rows read from the file
};

struct RowEmbeddingStats {
  int64_t cache_rows = 0;
  int64_t lookups = 0;
  int64_t rows_read = 0;
  bool folded = false;
};

struct RuntimeStats {
  ResidencyByPart residency;
  // One entry per layer with a neuron-major channel mix; empty when the file has none.
  std::vector<std::shared_ptr<SparseFfnLayerStats>> ffn_layers;
  std::shared_ptr<ClusteredHeadStats> head;            // null unless the head is clustered
  std::shared_ptr<RowEmbeddingStats> embedding;        // null unless rows are read on demand
  std::shared_ptr<StreamStats> stream;                 // null unless layers are streamed
};

}  // namespace rwkvlite
