// The "arch" and "dims" objects of a compact header for the canonical model (core/model.h).
//
// The format itself treats arch and dims as opaque JSON; these helpers give the compression
// pipeline and the runtime one agreed spelling, so neither has to invent its own:
//   arch: {"version": "v7", "ln_x_eps": 0.00064}
//   dims: {"n_layer": .., "n_embd": .., "n_vocab": .., "n_head": .., "head_size": .., "ffn_size": ..,
//          "lora_maa": .., "lora_decay": .., "lora_w": .., "lora_a": .., "lora_v": .., "lora_g": ..}
#pragma once

#include <nlohmann/json.hpp>

#include "runtime/core/model.h"

namespace rwkvlite::format {

struct ArchInfo {
  ArchVersion arch = ArchVersion::V4;
  float ln_x_eps = 64e-5f;
};

nlohmann::json arch_to_json(ArchVersion arch, float ln_x_eps);
// Throws InputError naming the field when "version" is missing or unknown, or "ln_x_eps" is not
// a positive finite number. Other keys are ignored (a later writer may add some).
ArchInfo arch_from_json(const nlohmann::json& arch);

nlohmann::json dims_to_json(const ModelDims& dims);
// Throws InputError unless every field above is present as a non-negative integer that fits
// int64. Other keys are ignored.
ModelDims dims_from_json(const nlohmann::json& dims);

}  // namespace rwkvlite::format
