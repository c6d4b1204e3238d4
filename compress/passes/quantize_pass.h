// The "quantize" pass: chooses each tensor's storage encoding by rules. It only sets
// StoredTensor::encoding; the values stay FP32 here and the compact-file writer encodes them.
//
// Rules are tried in order and the first whose targets match (and ignore does not) decides;
// tensors no rule matches keep their encoding. Tensors whose current encoding is not one of
// this pass's (b1, i32, ... chosen by other passes for exact reasons) are left alone.
//
// Report rows (one per matched tensor): action "encode <enc>" (or "keep <enc>"), shape, the
// encoding before and after, bytes before and after (format::encoded_tensor_bytes), metric
// rel_err = ||W - decode(encode(W))||_F / ||W||_F through the format's codec (the values the
// file will hold; the values themselves stay FP32 here), extra {rule (1-based), encoding}.
// A rule that matches no tensor of the model as the passes before it leave it is a warning
// (from plan()).
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

// ||W - decode(encode(W))||_F / ||W||_F of a tensor stored in `encoding` (0 for an all-zero
// tensor), encoded and decoded row by row with the format's codec, summed in double in row order.
double round_trip_error(const Tensor& values, const std::string& encoding);

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
};

class QuantizePass : public Pass {
 public:
  explicit QuantizePass(QuantizeOptions options);  // calls options.check()

  // Nothing model-specific to check up front: rules may target tensors that earlier passes
  // create (**.lr_a), which the model before the pipeline does not have.
  void validate(const CompressedModel& model) const override {}
  // Sets the encodings run() sets; warns about rules that match no tensor.
  void plan(CompressPlan& plan) const override;
  std::vector<PassReportRow> run(PassContext& ctx) override;

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
