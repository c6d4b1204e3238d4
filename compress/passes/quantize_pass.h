// The "quantize" pass: chooses each tensor's storage encoding by rules. It only sets
// StoredTensor::encoding; the values stay FP32 here and the compact-file writer encodes them.
//
// Rules are tried in order and the first whose targets match (and ignore does not) decides;
// tensors no rule matches keep their encoding. Tensors whose current encoding is not one of
// this pass's (b1, i32, ... chosen by other passes for exact reasons) are left alone.
//
// Report rows (one per matched tensor): action "encode <enc>" (or "keep <enc>"), bytes before
// and after by encoded_tensor_bytes, error 0 (the error appears only when values are encoded;
// the writer and the evaluation measure it), extra {rule (1-based), encoding}.
#pragma once

#include <string>
#include <vector>

#include "compress/pipeline/option_reader.h"
#include "compress/pipeline/pass.h"
#include "compress/pipeline/tensor_selector.h"

namespace rwkvlite {

// The encodings this pass may choose: f32 f16 bf16 i8 i4g32 i4g64 i4g128.
const std::vector<std::string>& quantize_encodings();
bool is_quantize_encoding(const std::string& encoding);

// Storage bytes of one row of `cols` values. The only place that knows these sizes, so it can
// be swapped for the format library's own:
//   f32 4·cols; f16, bf16 2·cols; i8 4 + cols (one f32 scale per row);
//   i4g<G> ceil(cols/G)·4 + ceil(cols/2) (one f32 scale per group of G, two values per byte).
// Error (internal) for an encoding not in quantize_encodings().
int64_t encoded_row_bytes(const std::string& encoding, int64_t cols);
// A tensor as rows x cols (Tensor::rows/cols: leading dimensions folded into rows).
int64_t encoded_tensor_bytes(const std::string& encoding, const Tensor& t);

struct QuantizeRule {
  std::vector<std::string> targets;
  std::vector<std::string> ignore;
  std::string encoding;
};

// Config keys of a [[pass]] table of this type (defaults shown; docs/config.md):
//
//   type = "quantize"          # sets each tensor's storage encoding; values are untouched here
//   rules = [                  # first rule whose targets match (and ignore does not) wins;
//     { targets = ["**.lr_a", "**.lr_b"], encoding = "i8" },   # tensors no rule matches keep
//     { targets = ["head.weight"], ignore = [], encoding = "f16" },  # their encoding
//   ]                          # encodings: f32 f16 bf16 i8 i4g32 i4g64 i4g128

struct QuantizeOptions {
  std::vector<QuantizeRule> rules;

  // Reads and validates a [[pass]] table of type "quantize" (UsageError with location).
  static QuantizeOptions read(OptionReader& reader);
  void check() const;  // UsageError (no location) for options built in code
  nlohmann::ordered_json to_json() const;
};

class QuantizePass : public Pass {
 public:
  explicit QuantizePass(QuantizeOptions options);  // calls options.check()

  std::string name() const override { return "quantize"; }
  // Nothing model-specific to check up front: rules may target tensors that earlier passes
  // create (**.lr_a), which the model before the pipeline does not have.
  void validate(const CompressedModel& model) const override {}
  int64_t planned_bytes_delta(const CompressedModel& model) const override;
  std::vector<PassReportRow> run(PassContext& ctx) override;
  nlohmann::ordered_json settings() const override { return options_.to_json(); }

  // Index of the rule deciding `name`, or -1.
  int rule_for(const std::string& name) const;
  // 1-based numbers of rules that match no tensor of `model` (likely typos once the model is
  // the one this pass runs on).
  std::vector<int> unmatched_rules(const CompressedModel& model) const;

 private:
  QuantizeOptions options_;
  std::vector<TensorSelector> selectors_;
};

}  // namespace rwkvlite
