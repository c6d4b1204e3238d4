#include "compress/passes/neuron_major_pass.h"

#include <chrono>

#include "compress/passes/channel_mix_tensors.h"
#include "runtime/core/error.h"
#include "runtime/format/layout.h"

namespace rwkvlite {

// ---- Options ------------------------------------------------------------------------------

NeuronMajorOptions NeuronMajorOptions::read(OptionReader& r) {
  NeuronMajorOptions o;
  o.ignore = r.get_patterns("ignore", o.ignore);
  return o;
}

// ---- Pass ---------------------------------------------------------------------------------

NeuronMajorPass::NeuronMajorPass(NeuronMajorOptions options)
    : options_(std::move(options)), ignore_(options_.ignore, {}) {}

std::vector<int64_t> NeuronMajorPass::selected_layers(const CompressedModel& model) const {
  std::vector<int64_t> layers;
  for (int64_t l = 0; l < model.dims.n_layer; ++l) {
    const bool ignored = ignore_.matches(layout::ffn_key_weight(l)) ||
                         ignore_.matches(layout::ffn_value_weight(l));
    if (!ignored) layers.push_back(l);
  }
  return layers;
}

void NeuronMajorPass::validate(const CompressedModel& model) const {
  const std::vector<int64_t> layers = selected_layers(model);
  if (layers.empty()) throw UsageError("neuron_major: 'ignore' excludes every layer of this model");
  for (int64_t l : layers) {
    const Tensor& key = dense_ffn_matrix(model, l, "key", "neuron_major").values;
    const Tensor& value = dense_ffn_matrix(model, l, "value", "neuron_major").values;
    if (value.dim(0) != key.dim(1) || value.dim(1) != key.dim(0)) {
      throw UsageError("neuron_major: layer " + std::to_string(l) + " has key " + shape_to_string(key.shape) +
                       " and value " + shape_to_string(value.shape) + "; expected [F, D] and [D, F]");
    }
  }
}

namespace {

// Replaces layer l's value weight by `neurons` (its transpose [F, D]: the values in a run, only
// the shape in a plan) right after the key, with the same encoding; makes both row-addressable.
// Returns the stored value.neurons.
const StoredTensor& replace_by_neurons(CompressedModel& model, int64_t l, Tensor neurons_values) {
  const std::string key_name = layout::ffn_key_weight(l);
  const std::string value_name = layout::ffn_value_weight(l);
  StoredTensor neurons;
  neurons.name = layout::ffn_value_neurons(l);
  neurons.encoding = model.at(value_name).encoding;
  neurons.row_addressable = true;
  neurons.values = std::move(neurons_values);
  model.remove(value_name);
  model.at(key_name).row_addressable = true;
  return model.put(std::move(neurons), key_name);
}

}  // namespace

void NeuronMajorPass::plan(CompressPlan& plan) const {
  for (int64_t l : selected_layers(plan.model)) {
    const Tensor& value = plan.model.at(layout::ffn_value_weight(l)).values;
    Tensor neurons;
    neurons.shape = {value.dim(1), value.dim(0)};
    replace_by_neurons(plan.model, l, std::move(neurons));
  }
}

std::vector<PassReportRow> NeuronMajorPass::run(PassContext& ctx) {
  // Earlier passes may have changed the model since the pipeline validated it.
  validate(ctx.model);
  const std::vector<int64_t> layers = selected_layers(ctx.model);
  if (ctx.on_start) ctx.on_start(static_cast<int64_t>(layers.size()));
  std::vector<PassReportRow> rows;
  for (int64_t l : layers) {
    const auto t0 = std::chrono::steady_clock::now();
    const StoredTensor& value = ctx.model.at(layout::ffn_value_weight(l));
    Tensor neurons = transposed(value.values);
    PassReportRow row;
    row.tensor = layout::ffn_value_neurons(l);
    row.shape = value.values.shape;
    row.encoding_before = row.encoding_after = value.encoding;
    row.action = "neuron-major";
    row.bytes_before = value.stored_bytes();
    row.extra["layer"] = l;
    row.extra["encoding"] = value.encoding;
    row.bytes_after = replace_by_neurons(ctx.model, l, std::move(neurons)).stored_bytes();
    row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (ctx.on_row) ctx.on_row(row);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace rwkvlite
