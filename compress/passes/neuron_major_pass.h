// The "neuron_major" pass: stores each channel-mix value matrix neuron by neuron, so that the
// runtime can read and use only the neurons a sparsity predictor selects.
//
// For every layer i (unless ignored) it replaces blocks.{i}.ffn.value.weight [D, F] by its exact
// transpose blocks.{i}.ffn.value.neurons [F, D] (row j = neuron j's output vector), keeping the
// encoding and placing it right after blocks.{i}.ffn.key.weight, and marks both the key and
// value.neurons row-addressable (one checksum per row). Names: docs/compact-format.md §6.
//
// Config keys: ignore = [tensor patterns]; a layer is skipped when its key or value weight
// name matches one (e.g. "blocks.0.**"). A layer whose key or value is missing, not
// [F, D] / [D, F], or low-ranked (lr_a present) is a UsageError.
//
// Report rows (one per layer): tensor blocks.{i}.ffn.value.neurons, action "neuron-major",
// shape [D, F] of the value weight, bytes before = after (same encoding), no metric (the
// transpose is exact), seconds, extra {layer, encoding}.
#pragma once

#include <string>
#include <vector>

#include "compress/pipeline/option_reader.h"
#include "compress/pipeline/pass.h"
#include "compress/pipeline/tensor_selector.h"

namespace rwkvlite {

// Config keys of a [[pass]] table of this type (defaults shown; docs/config.md):
//
//   type = "neuron_major"      # channel-mix value stored neuron by neuron for sparse FFN:
//                              # blocks.{i}.ffn.value.weight [D,F] -> value.neurons [F,D]
//                              # (exact transpose, same encoding); key and value.neurons
//                              # become row-addressable (docs/compact-format.md §6)
//   ignore = []                # layers whose ffn key/value weight name matches stay as they are
//                              # (e.g. ["blocks.0.**"])

struct NeuronMajorOptions {
  std::vector<std::string> ignore;

  static NeuronMajorOptions read(OptionReader& reader);
};

class NeuronMajorPass : public Pass {
 public:
  explicit NeuronMajorPass(NeuronMajorOptions options);  // UsageError for a malformed pattern

  void validate(const CompressedModel& model) const override;
  void plan(CompressPlan& plan) const override;
  std::vector<PassReportRow> run(PassContext& ctx) override;

  // The layers this pass converts in `model`, ascending.
  std::vector<int64_t> selected_layers(const CompressedModel& model) const;

 private:
  NeuronMajorOptions options_;
  TensorSelector ignore_;
};

}  // namespace rwkvlite
