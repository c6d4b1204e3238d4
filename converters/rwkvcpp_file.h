// rwkv.cpp model files (magic 'ggmf', file versions 100 and 101): reading into the canonical
// model and writing it back.
//
// rwkv.cpp stores some tensors transformed for its own inference (see its
// python/convert_pytorch_to_ggml.py): squeezed time-mix vectors, v4 decays as -exp(w), v5 decays
// as exp(-exp(w)) and v5.1 bonuses as exp(u), v6 LoRA matrices transposed and decays reshaped,
// v7 LoRA matrices transposed and the six token-shift mixes concatenated into x_rwkvag. The
// reader undoes all of them; the writer reapplies them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/model.h"

namespace rwkvlite {

// Element types of rwkv.cpp files (values as stored in the file).
enum class RwkvCppType : int32_t { FP32 = 0, FP16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 7, Q5_1 = 8, Q8_0 = 9 };
const char* rwkvcpp_type_name(RwkvCppType t);

// One tensor exactly as stored (after dequantization), before undoing rwkv.cpp's transforms.
struct RwkvCppRawTensor {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch order (the file stores it reversed)
  RwkvCppType type = RwkvCppType::FP32;
  std::vector<float> data;
};

struct RwkvCppRawFile {
  int32_t version = 0;
  int64_t n_vocab = 0, n_embed = 0, n_layer = 0;
  RwkvCppType data_type = RwkvCppType::FP32;
  std::vector<RwkvCppRawTensor> tensors;  // file order
};

// Reads and dequantizes every tensor, validating the header and every size against the file
// before allocating. Throws InputError on any malformed, truncated or hostile content.
RwkvCppRawFile read_rwkvcpp_raw(const std::string& path);

// Reads into the canonical model (transforms undone, architecture detected and validated).
// The group-norm epsilon is set to what rwkv.cpp evaluates the version with.
Model read_rwkvcpp(const std::string& path);

// Writes FP32 or FP16 (FP16 for 2-D+ weight matrices only, as rwkv.cpp's converter does),
// file version 101, atomically.
void write_rwkvcpp(const Model& model, const std::string& path, RwkvCppType dtype);

// Exactly invertible storage transforms, exposed for tests: the canonical value whose stored
// form (computed as the writer computes it) reproduces `stored` bit for bit when one exists.
float rwkvcpp_stored_decay_v4(float w);     // -exp(w)
float rwkvcpp_stored_decay_v5(float w);     // exp(-exp(w))
float rwkvcpp_stored_first_v5_1(float u);   // exp(u)
float rwkvcpp_canonical_decay_v4(float stored);
float rwkvcpp_canonical_decay_v5(float stored);
float rwkvcpp_canonical_first_v5_1(float stored);

}  // namespace rwkvlite
