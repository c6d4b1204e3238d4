// The canonical model: every reader produces it, every writer and the dense engine consume it.
//
// Tensors carry BlinkDL's PyTorch names, shapes and parameterisation (the `.pth` training
// checkpoint), whatever file they came from. Storage-specific transforms (rwkv.cpp's
// exp(-exp(w)) decays, squeezed or transposed tensors, v7's concatenated x_rwkvag) are undone
// by the reader, so one set of weights read from any format gives identical canonical tensors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/core/tensor.h"

namespace rwkvlite {

// Architecture versions, named as rwkv.cpp names them:
//   V4    time-mix with per-channel decay (RWKV-4)
//   V5_1  multi-head, per-head decay and bonus, group norm, no gate  (BlinkDL calls this 5.0/5.1)
//   V5_2  multi-head, per-channel decay and bonus (time_faaaa), gate (RWKV-5 "World")
//   V6    data-dependent token shift and decay through LoRAs (RWKV-6 "Finch")
//   V7    generalised delta rule with in-context learning rate (RWKV-7 "Goose")
enum class ArchVersion { V4, V5_1, V5_2, V6, V7 };

const char* arch_name(ArchVersion a);              // "v4", "v5.1", ...
ArchVersion arch_from_name(const std::string& s);  // inverse; throws UsageError

struct ModelDims {
  int64_t n_layer = 0;
  int64_t n_embd = 0;    // D
  int64_t n_vocab = 0;   // V
  int64_t n_head = 0;    // H (v4: 0, no heads)
  int64_t head_size = 0; // S = D / H (v4: 0)
  int64_t ffn_size = 0;  // F, channel-mix width
  // LoRA widths of v6 (token-shift mix, decay) and v7 (decay w, in-context rate a, value
  // residual v, gate g). Zero where the version has no such LoRA.
  int64_t lora_maa = 0, lora_decay = 0;
  int64_t lora_w = 0, lora_a = 0, lora_v = 0, lora_g = 0;
};

struct Model {
  ArchVersion arch = ArchVersion::V4;
  ModelDims dims;
  // Epsilon of the per-head group norm (att.ln_x) of v5/v6/v7. A property of the model, not
  // a constant: rwkv.cpp evaluates v5 with 1e-5 and v6/v7 with 64e-5, BlinkDL's code uses
  // 64e-5 throughout, and the reference logits only match with the value the model was run with.
  float ln_x_eps = 64e-5f;
  std::map<std::string, Tensor> tensors;  // canonical names -> FP32 values

  // Where the weights came from, for `inspect` and provenance.
  std::string source_format;                          // "rwkv.cpp", "pth", "safetensors", ...
  std::map<std::string, std::string> source_dtypes;   // tensor name -> dtype in the source file

  const Tensor& at(const std::string& name) const;  // throws InputError naming the tensor
  Tensor& at(const std::string& name);
  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  int64_t parameter_count() const;
};

// Which part of the network a tensor belongs to, for size breakdowns:
// "embedding", "time_mix", "channel_mix", "head", "norms".
std::string component_of(const std::string& tensor_name);

// Default group-norm epsilon for a version when the source file does not record one
// (BlinkDL's reference value).
float default_ln_x_eps(ArchVersion a);

}  // namespace rwkvlite
