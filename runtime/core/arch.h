// Architecture knowledge in one place: detecting the RWKV version from tensor names,
// deriving every dimension, and the table of tensors (name and shape) each version has.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/core/model.h"

namespace rwkvlite {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  bool optional = false;  // may be absent (v7 layer 0 value-residual LoRA, which is never used)
};

// Detects the version from canonical (BlinkDL) tensor names. Throws InputError when none fits.
ArchVersion detect_arch(const std::set<std::string>& names);

// Derives every dimension from tensor shapes. Throws InputError listing what is missing or
// inconsistent. Shapes are canonical (PyTorch order).
ModelDims derive_dims(ArchVersion arch, const std::map<std::string, std::vector<int64_t>>& shapes);

// Every tensor a model of this version and these dimensions has, in a stable order
// (embedding, blocks in order, head), which the writers use as their output order.
std::vector<TensorSpec> expected_tensors(ArchVersion arch, const ModelDims& dims);

// Detects the architecture, derives the dimensions and validates names, shapes and values of
// a freshly read model, filling model.arch and model.dims. Collects every problem (missing,
// unknown or misshapen tensors, non-finite values) and throws one InputError listing them all.
void finalize_and_validate(Model& model, const std::string& source_description);

// Range of group-norm epsilons accepted from a file or the command line: real models use 1e-5
// to 64e-5, and a value of 1 or more (or NaN) would silently flatten every head's output.
inline constexpr double kMaxLnXEps = 0.1;
// Compared as the float the model stores, so that 0.1 written as a float (0.10000000149) reads back.
inline bool plausible_ln_x_eps(double eps) {  // false for NaN
  return eps > 0 && static_cast<float>(eps) <= static_cast<float>(kMaxLnXEps);
}

// Tensors in expected order (expected_tensors order, optional ones when present).
std::vector<std::string> ordered_tensor_names(const Model& model);

}  // namespace rwkvlite
