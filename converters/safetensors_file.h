// safetensors files (https://github.com/huggingface/safetensors): reading into the canonical
// model and writing it.
//
// Layout: a little-endian u64 N, N bytes of JSON header, then the data section. The header maps
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
// data section) plus an optional "__metadata__" object of string -> string. safetensors stores
// tensors exactly as PyTorch holds them, so names, shapes and values are the canonical ones
// with no transform.
//
// rwkvlite records the model's group-norm epsilon in the metadata as "rwkvlite.ln_x_eps" (the
// shortest decimal that reads back to the same float); files without it get
// default_ln_x_eps(arch).
#pragma once

#include <cstdint>
#include <string>

#include "converters/dense_dtype.h"
#include "runtime/core/model.h"

namespace rwkvlite {

// The element types rwkvlite reads and writes (F32, F16, BF16). Every tensor of a written file
// has the one type asked for.
using SafetensorsDtype = DenseDtype;
const char* safetensors_dtype_name(SafetensorsDtype t);  // "F32", "F16", "BF16" as in the header

// Metadata key of the group-norm epsilon.
inline constexpr const char* kSafetensorsEpsKey = "rwkvlite.ln_x_eps";

// Largest JSON header accepted, as the reference implementation limits it: a larger one is
// either hostile or not a safetensors file.
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;
// Nesting the header parser accepts: a valid header has three levels ({name: {"shape": [dims]}}).
inline constexpr int kSafetensorsMaxHeaderDepth = 8;

// Reads a safetensors file. Validates the whole header (length, JSON, dtypes, shapes, offsets
// covering the data section exactly without overlaps or holes, byte counts) before allocating
// any tensor, then validates the model (architecture, names, shapes, finite values).
// Throws InputError naming the first problem found in the file, or every problem of the model.
Model read_safetensors(const std::string& path);

// Writes every tensor in `dtype`, in ordered_tensor_names order, atomically. The output bytes
// depend only on the model and dtype. Throws UsageError when a value does not fit the dtype
// (beyond the F16 range), naming the tensor.
void write_safetensors(const Model& model, const std::string& path, SafetensorsDtype dtype);

}  // namespace rwkvlite
