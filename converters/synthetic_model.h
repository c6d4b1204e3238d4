// Synthetic dense checkpoints: a model of any size, filled with seeded random values at the
// scales of a trained RWKV, for measuring memory and speed at shapes (0.1B, 65,536-token
// vocabulary) for which no trained checkpoint is bundled. Its text predictions are noise; its
// arithmetic is stable (layer norms near 1/0, decays and mixes in their trained ranges,
// matrices ~N(0, 1/in)), so the engine and every compression pass run on it as on a real one.
//
// Deterministic: the same options give the same values on every platform (SeededRandom).
#pragma once

#include <cstdint>

#include "runtime/core/model.h"

namespace rwkvlite {

struct SyntheticModelOptions {
  ArchVersion arch = ArchVersion::V5_2;  // v5.2 or v7
  int64_t n_layer = 12;
  int64_t n_embd = 768;
  int64_t n_vocab = 65536;
  int64_t ffn_size = 0;   // 0: the architecture's usual width (v5.2: 3.5 D, v7: 4 D, multiples of 32)
  int64_t head_size = 64;
  uint64_t seed = 0;
};

// The dimensions the options describe (v7 LoRA widths by BlinkDL's formulas); UsageError for
// an unsupported architecture or impossible sizes (head_size not dividing n_embd, ...).
ModelDims synthetic_dims(const SyntheticModelOptions& options);

// A validated canonical model (finalize_and_validate has accepted it).
Model make_synthetic_model(const SyntheticModelOptions& options);

}  // namespace rwkvlite
