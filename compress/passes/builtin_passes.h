// The pass types rwkvlite ships, registered explicitly by whoever builds a pipeline (the
// rwkvlite tool, tests). Adding a pass: docs/architecture.md, "Adding a pass".
#pragma once

#include "compress/pipeline/pass_registry.h"

namespace rwkvlite {

// Adds lowrank, quantize, neuron_major, sparsity_predictor, fold_embedding, cluster_head.
void add_builtin_passes(PassRegistry& registry);

// A registry holding exactly the built-in passes (built once, read-only).
const PassRegistry& builtin_passes();

}  // namespace rwkvlite
