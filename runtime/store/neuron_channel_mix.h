// A channel mix over neuron-major rows read on demand: out = Σ_j relu(k_j · x)² v_j over the
// neurons j a predictor selects for the token (every neuron when the layer has no predictor).
//
// Neuron j is row j of `blocks.{i}.ffn.key.weight` and row j of `blocks.{i}.ffn.value.neurons`
// (docs/compact-format.md, section 6); both are read together through one bounded RowCache,
// so at most cache_rows neurons are resident. The predictor (held whole; it is small) is the
// union of an MLP, relu(down · x) then up · h > mlp_threshold, and the sign_top_k largest
// scores of a 1-bit copy of the key (ties to the lower index).
//
// Tokens are processed one at a time and neurons in ascending order on the calling thread, so
// results do not depend on the thread count (the predictor's matrix products are split by rows,
// which is deterministic too). Pre-activations of unselected neurons are never computed, so a
// request for key_preact (calibration) is a UsageError.
//
// Audit mode computes every neuron's exact pre-activation from a private FP32 copy of the key,
// to measure the predictor's recall and the true sparsity on the runtime's own inputs. That
// copy is deliberately NOT registered as resident weight memory and is not read through the
// counted cache: it is a measuring instrument, not part of the runtime.
//
// make_sparse_ffn_provider is how load_compact_engine builds one for every neuron-major layer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "runtime/engine/channel_mix.h"
#include "runtime/format/compact_reader.h"
#include "runtime/store/row_cache.h"
#include "runtime/store/runtime_stats.h"

namespace rwkvlite {

// One token's selection, for tests and audits.
struct NeuronSelection {
  int64_t layer = 0;
  std::span<const float> x_k;              // the channel mix's input (D)
  std::span<const int64_t> selected;       // ascending neuron indices computed
  std::span<const int64_t> rows_read;      // neurons read from the file for this token
};
using NeuronSelectionTrace = std::function<void(const NeuronSelection&)>;

struct NeuronPredictor {
  std::unique_ptr<Projection> down, up;  // MLP (both or neither): r x D, F x r
  float mlp_threshold = 0.0f;
  std::unique_ptr<Projection> sign;      // F x D 1-bit key copy, or null
  int64_t sign_top_k = 0;
  bool empty() const { return !down && !sign; }
};

struct NeuronChannelMixOptions {
  int64_t layer = 0;
  int64_t cache_rows = 0;  // >= 1
  bool audit = false;
  NeuronSelectionTrace trace;  // optional
};

class NeuronChannelMix final : public ChannelMix {
 public:
  // key_name, value_name: [F, D] tensors of `file`. `layer_counter` is this layer's residency
  // counter: the cache registers its bytes there, and the predictor's projections should have
  // been built with it too, so its peak is the layer's peak. `stats` is filled as tokens run.
  NeuronChannelMix(std::shared_ptr<const format::CompactFile> file, const std::string& key_name,
                   const std::string& value_name, NeuronPredictor predictor, NeuronChannelMixOptions options,
                   std::shared_ptr<ResidencyCounter> layer_counter, std::shared_ptr<SparseFfnLayerStats> stats);

  int64_t n_embd() const override { return d_; }
  int64_t width() const override { return f_; }
  void apply(const float* x_k, int64_t n, float* out, float* key_preact, Scratch& scratch,
             ThreadPool& pool) const override;
  // What is held: the predictor and the cache at capacity.
  int64_t storage_bytes() const override;

 private:
  // Fills selected_ (ascending) for one token.
  void select(const float* x, Scratch& scratch, ThreadPool& pool) const;
  void audit(const float* x) const;

  int64_t d_ = 0, f_ = 0;
  format::EncodingSpec key_enc_, value_enc_;
  NeuronPredictor predictor_;
  NeuronChannelMixOptions options_;
  std::shared_ptr<SparseFfnLayerStats> stats_;
  std::shared_ptr<ResidencyCounter> layer_counter_;
  std::unique_ptr<RowCache> cache_;                  // mutable state behind a const interface
  std::vector<float> audit_key_;                     // F x D, audit mode only, not counted
  mutable std::vector<int64_t> selected_;
  mutable std::vector<uint8_t> chosen_;
  mutable std::vector<int64_t> order_;
  mutable std::vector<const uint8_t*> key_rows_, value_rows_;  // the current batch's rows
};

// The runtime's settings of the sparse channel mix (RuntimeOptions, store/compact_model.h).
struct SparseFfnRuntimeOptions {
  std::optional<double> neuron_cache_fraction;  // overrides metadata sparse_ffn.neuron_cache_fraction
  bool audit = false;
  NeuronSelectionTrace trace;
};

// The channel-mix provider of a compact file (WeightProviders::channel_mix): a NeuronChannelMix
// for every layer stored neuron-major (blocks.{i}.ffn.value.neurons), with the predictor
// tensors the layer has and its settings from metadata "sparse_ffn" (runtime/format/layout.h);
// null for other layers, which load densely. Registers each layer's stats in `stats` and its
// bytes under stats->residency.ffn. Checks the metadata and the cache fraction now (UsageError
// for a bad override, InputError for a bad file) and a layer's tensors when it is built.
std::function<std::unique_ptr<ChannelMix>(int64_t layer)> make_sparse_ffn_provider(
    std::shared_ptr<const format::CompactFile> file, SparseFfnRuntimeOptions options,
    std::shared_ptr<RuntimeStats> stats);

}  // namespace rwkvlite
