// Lookups of channel-mix tensors shared by the passes that rewrite the channel mix
// (neuron_major, sparsity_predictor), so that neither includes the other.
#pragma once

#include <cstdint>
#include <string>

#include "compress/pipeline/compressed_model.h"

namespace rwkvlite {

// The dense channel-mix matrix blocks.{layer}.ffn.{which}.weight (which = key or value) of
// `model`; UsageError naming `pass` when it is missing, was low-ranked or is already
// neuron-major.
const StoredTensor& dense_ffn_matrix(const CompressedModel& model, int64_t layer, const std::string& which,
                                     const std::string& pass);

}  // namespace rwkvlite
