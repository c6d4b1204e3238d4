// Builds dense FP32 engine weights from a canonical model.
#pragma once

#include "core/model.h"
#include "engine/weights.h"

namespace rwkvlite {

// Copies every tensor out of `model` (which may be discarded afterwards), transposing LoRA
// factors into Projection orientation and precomputing the transformed small tensors.
// Throws InputError if the model lacks a tensor or has a wrong shape.
EngineWeights build_dense_weights(const Model& model);

// The same, moving tensor data out of `model` instead of copying it, so that a large model is
// never held twice. `model` is left with emptied tensors.
EngineWeights build_dense_weights(Model&& model);

}  // namespace rwkvlite
