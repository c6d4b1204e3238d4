#include "compress/passes/channel_mix_tensors.h"

#include "runtime/core/error.h"
#include "runtime/format/layout.h"

namespace rwkvlite {

const StoredTensor& dense_ffn_matrix(const CompressedModel& model, int64_t layer, const std::string& which,
                                     const std::string& pass) {
  const std::string name = layout::ffn_tensor_name(layer, which + ".weight");
  if (!model.has(name)) {
    if (model.has(layout::lowrank_a(layout::ffn_prefix(layer) + which))) {
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

}  // namespace rwkvlite
