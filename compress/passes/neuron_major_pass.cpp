#include "compress/passes/neuron_major_pass.h"

#include <chrono>

#include "runtime/core/error.h"
#include "runtime/format/layout.h"
#include "compress/pipeline/compact_export.h"

namespace rwkvlite {

const StoredTensor& dense_ffn_matrix(const CompressedModel& model, int64_t layer, const std::string& which,
                                     const std::string& pass) {
  const std::string name = layout::matrix_weight(layout::ffn_tensor_name(layer, which));
  if (!model.has(name)) {
    if (model.has(layout::lowrank_a(layout::ffn_tensor_name(layer, which)))) {
      throw UsageError(pass + ": '" + name + "' was low-ranked by an earlier pass; " + pass +
                       " needs the dense channel-mix " + which + " (do not target it with lowrank)");
    }
    if (which == "value" && model.has(layout::ffn_value_neurons(layer))) {
      throw UsageError(pass + ": layer " + std::to_string(layer) + " is already neuron-major (" +
                       layout::ffn_value_neurons(layer) + "); give neuron_major once");
    }
    throw UsageError(pass + ": the model has no '" + name + "'");
  }
  const StoredTensor& t = model.at(name);
  if (t.values.rank() != 2) {
    throw UsageError(pass + ": '" + name + "' has shape " + shape_to_string(t.values.shape) + ", expected a matrix");
  }
  return t;
}

// ---- Options ------------------------------------------------------------------------------

NeuronMajorOptions NeuronMajorOptions::read(OptionReader& r) {
  NeuronMajorOptions o;
  o.ignore = r.get_patterns("ignore", o.ignore);
  return o;
}

nlohmann::ordered_json NeuronMajorOptions::to_json() const {
  nlohmann::ordered_json j;
  j["ignore"] = ignore;
  return j;
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

std::vector<PassReportRow> NeuronMajorPass::run(PassContext& ctx) {
  // Earlier passes may have changed the model since the pipeline validated it.
  validate(ctx.model);
  std::vector<PassReportRow> rows;
  for (int64_t l : selected_layers(ctx.model)) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string key_name = layout::ffn_key_weight(l);
    const std::string value_name = layout::ffn_value_weight(l);
    const StoredTensor& value = ctx.model.at(value_name);
    const int64_t D = value.values.dim(0), F = value.values.dim(1);
    StoredTensor neurons;
    neurons.name = layout::ffn_value_neurons(l);
    neurons.encoding = value.encoding;
    neurons.row_addressable = true;
    neurons.values = Tensor({F, D});
    const float* src = value.values.data.data();
    float* dst = neurons.values.data.data();
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t j = 0; j < F; ++j) dst[j * D + d] = src[d * F + j];
    }
    PassReportRow row;
    row.tensor = neurons.name;
    row.action = "neuron-major";
    row.bytes_before = stored_tensor_bytes(value);
    row.extra["layer"] = l;
    row.extra["encoding"] = value.encoding;
    ctx.model.remove(value_name);
    ctx.model.at(key_name).row_addressable = true;
    row.bytes_after = stored_tensor_bytes(ctx.model.put(std::move(neurons), key_name));
    row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (ctx.on_row) ctx.on_row(row);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace rwkvlite
