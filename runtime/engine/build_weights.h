// Builds dense FP32 engine weights from a canonical model.
#pragma once

#include <functional>

#include "runtime/core/model.h"
#include "runtime/engine/weights.h"

namespace rwkvlite {

// Copies every tensor out of `model` (which may be discarded afterwards), transposing LoRA
// factors into Projection orientation and precomputing the transformed small tensors.
// Throws InputError if the model lacks a tensor or has a wrong shape.
EngineWeights build_dense_weights(const Model& model);

// The same, moving tensor data out of `model` instead of copying it, so that a large model is
// never held twice. `model` is left with emptied tensors.
EngineWeights build_dense_weights(Model&& model);

// Sources of the big parts for builders of compressed weights (a compact file): each provider,
// when set, supplies its part instead of a dense FP32 copy of the model's tensor. `matrix` is
// asked for every y = W x matrix by canonical name ("blocks.3.att.key.weight", "head.weight")
// and may return null to fall back to the model's tensor; `channel_mix` likewise per layer.
// A LoRA factor ("blocks.3.att.w1", applied as x @ A) that `small_tensors` lacks is asked of
// `matrix` too, for its y = W x orientation (rows x cols = the factor transposed).
// Everything not provided (norms, mixes, decays, FP32 LoRA factors) comes from `small_tensors`,
// through the same translation code as the dense build.
struct WeightProviders {
  std::function<std::unique_ptr<Projection>(const std::string& name, int64_t rows, int64_t cols)> matrix;
  std::function<std::unique_ptr<ChannelMix>(int64_t layer)> channel_mix;
  std::function<std::unique_ptr<Embedding>()> embedding;
  std::function<std::unique_ptr<Head>()> head;
};
EngineWeights build_weights(const Model& small_tensors, WeightProviders providers);

}  // namespace rwkvlite
