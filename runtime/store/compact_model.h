// Builds an inference engine from a compact file, reading each tensor once and keeping the big
// matrices in their stored encoding. Every byte of weight memory it holds is registered with
// one ResidencyCounter, whose peak is the "peak resident weight bytes" the runtime reports,
// and with one of its parts (ffn, head, embedding, other).
//
// Parts the file stores in the runtime's row-addressable forms (docs/compact-format.md,
// section 6; names and metadata in runtime/format/layout.h) are read on demand instead of
// loaded, each built by the provider next to its class:
//   blocks.{i}.ffn.value.neurons (+ predictor)  -> NeuronChannelMix (make_sparse_ffn_provider)
//   head.clustered and its tables                -> TwoLevelHead (make_two_level_head_provider)
//   emb.folded, or an embedding cache size        -> RowEmbedding (make_embedding_provider)
// Files without them load exactly as before; the matrices come from make_projection_provider.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "runtime/engine/engine.h"
#include "runtime/format/compact_reader.h"
#include "runtime/plan/memory_budget.h"
#include "runtime/store/elastic_selection.h"
#include "runtime/store/layer_stream.h"
#include "runtime/store/neuron_channel_mix.h"
#include "runtime/store/residency.h"
#include "runtime/store/runtime_stats.h"

namespace rwkvlite {

// Settings of the on-demand parts. Unset values come from the file's metadata (sparse_ffn,
// clustered_head, embedding_cache_rows), then from the defaults noted.
struct RuntimeOptions {
  int threads = 1;
  // (0, 1]; default: sparse_ffn.neuron_cache_fraction for layers with a predictor, else 1.
  std::optional<double> neuron_cache_fraction;
  std::optional<double> head_p;                 // (0, 1]; default 0.95
  std::optional<int64_t> head_min_clusters;     // >= 1; default 1
  std::optional<int64_t> head_max_clusters;     // >= 1; default K
  std::optional<int64_t> head_cache_rows;       // >= 1; default V
  std::optional<int64_t> embedding_cache_rows;  // >= 1; default V for emb.folded
  bool audit_sparsity = false;                  // measure predictor recall (NeuronChannelMix)
  NeuronSelectionTrace neuron_trace;            // tests: sees every token's neuron selection
  // Resident weight bytes the engine may hold (docs/runtime.md, "Memory budget"). An elastic
  // file chooses a stored form per matrix to fit it; any file that cannot fit fails to load
  // with ResourceError. A percentage needs an elastic file (its dense FP16 size).
  std::optional<MemoryBudget> memory_budget;
  // Elastic files: stream layers even when holding them fits (benchmarks; needs a budget), and
  // how (pipelined or sequential, an emulated storage bandwidth). Streaming itself starts on
  // its own whenever the budget is below what holding every matrix needs.
  bool stream = false;
  StreamOptions stream_options;
};

struct CompactEngine {
  std::unique_ptr<Engine> engine;
  std::shared_ptr<ResidencyCounter> residency;  // the total (= stats->residency.total)
  format::ReadStats reads;  // what building read from the file
  nlohmann::json metadata;  // the file's metadata (passes, provenance)
  std::shared_ptr<RuntimeStats> stats;
  std::optional<ElasticSelection> elastic;  // set for an elastic file
  std::optional<int64_t> budget_bytes;      // the resolved memory budget, when one was given
};

CompactEngine load_compact_engine(const std::string& path, const RuntimeOptions& options);
inline CompactEngine load_compact_engine(const std::string& path, int threads) {
  RuntimeOptions o;
  o.threads = threads;
  return load_compact_engine(path, o);
}

// What the engine holds of `file`'s tensors besides the elastic stored forms, at most: the small
// tensors decoded to FP32, every other tensor at its stored bytes (the on-demand parts' caches
// hold at most that).
int64_t non_elastic_resident_bytes(const format::CompactFile& file);

// True if the file starts with the compact format's magic.
bool is_compact_file(const std::string& path);

}  // namespace rwkvlite
