// The model as compression passes see and change it, before it is written as a compact file.
//
// It starts as the canonical dense model (one StoredTensor per canonical tensor, FP32) and each
// pass replaces, adds or re-encodes tensors. Naming conventions that the runtime relies on
// (built and tested through runtime/format/layout.h):
//   <base>.weight                   a dense matrix W [out, in] (base like "blocks.3.att.key")
//   <base>.lr_a, <base>.lr_b        low-rank factors with W ~= lr_b · lr_a,
//                                   lr_a [r, in] = sqrt(S_r) V_r^T, lr_b [out, r] = U_r sqrt(S_r)
// Further passes (sparsity predictors, clustered head, folded embedding) add their own names,
// all in runtime/format/layout.h and docs/compact-format.md section 6.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "runtime/core/model.h"

namespace rwkvlite {

struct StoredTensor {
  std::string name;
  Tensor values;                 // FP32 values (only the shape in a plan); the encoding is applied when the file is written
  std::string encoding = "f32";  // a codec name of runtime/format (f32, f16, bf16, i8, i4g64, b1, i32, ...)
  bool row_addressable = false;  // one checksum per row: the runtime reads single rows on demand
  // The file's bytes of `values` in `encoding` when a pass chose the scales and codes itself
  // (the quantize pass's weighted and gptq methods); empty means the writer encodes `values`.
  // Why bytes and not only values: the writer's encoder picks round-to-nearest scales from each
  // group's min and max, and values decoded from other scales do not in general lead it back
  // to those scales (a group need not use its lowest and highest codes, and min + 15 * scale
  // rounds in float), so the chosen codes could not survive a re-encoding. `values` then hold
  // the decode of these bytes, and write_compact refuses bytes that no longer decode to them
  // (a later pass changed the values or the encoding without clearing this).
  std::vector<uint8_t> encoded;

  // Bytes of the values in the file in `encoding` (format::encoded_tensor_bytes; no padding).
  int64_t stored_bytes() const;
};

class CompressedModel {
 public:
  // Starts from a dense canonical model: every tensor FP32, in the canonical writing order.
  static CompressedModel from_dense(const Model& model);
  // The same, taking the tensors' values out of `model` instead of copying them (the model
  // keeps its names, dims and metadata, with empty tensors): one copy of the weights, not two.
  static CompressedModel from_dense(Model&& model);
  // from_dense(model).shapes_only() without copying any value.
  static CompressedModel shapes_of(const Model& model);
  // A copy with every tensor's name, shape, encoding and flags but no values (Tensor::data
  // empty): what a dry run plans on (pass.h, CompressPlan).
  CompressedModel shapes_only() const;
  // A tensor of that shape without values, for a pass's plan to put where its run puts values.
  static Tensor shape_only(std::vector<int64_t> shape);

  ArchVersion arch = ArchVersion::V4;
  ModelDims dims;
  float ln_x_eps = 64e-5f;

  bool has(const std::string& name) const { return index_.count(name) != 0; }
  StoredTensor& at(const std::string& name);
  const StoredTensor& at(const std::string& name) const;
  // Adds a tensor after `after` (or at the end when empty); replaces one of the same name.
  StoredTensor& put(StoredTensor t, const std::string& after = "");
  void remove(const std::string& name);
  const std::vector<StoredTensor>& tensors() const { return tensors_; }
  std::vector<std::string> names() const;

  // Top-level keys a pass adds to the compact file's metadata for the runtime (settings that
  // are not tensors, e.g. "sparse_ffn"; docs/compact-format.md section 6). write_compact merges
  // them into the metadata it is given; a key that is already there is an internal error.
  nlohmann::ordered_json file_metadata = nlohmann::ordered_json::object();

 private:
  void reindex();
  std::vector<StoredTensor> tensors_;
  std::map<std::string, size_t> index_;
};

}  // namespace rwkvlite
