// The "quantize" pass: chooses each tensor's storage encoding by rules, and for integer
// encodings how the codes are chosen (the rule's method).
//
//   rtn       round to nearest: the pass only sets StoredTensor::encoding; the values stay FP32
//             and the compact-file writer encodes them (the format's own scales).
//   weighted  per group (i4) or row (i8) the scale and min of the smallest error weighted by
//             h = diag(E[x xᵀ]) of the tensor's input; gptq: GPTQ error compensation through the
//             full E[x xᵀ] (compress/algo/error_aware_quant.h). Both store the chosen bytes in
//             StoredTensor::encoded and their decode in the values, so the file holds exactly
//             what was chosen; they need calibration, and only then does the pass ask for it.
//
// Input statistics exist for the calibrated projections (layout::is_calibrated_projection:
// att receptance/key/value/gate/output, ffn receptance/key) and for the low-rank factors of
// one: <base>.lr_a reads the projection's input x (its moment C), <base>.lr_b reads lr_a·x
// (moment A C Aᵀ with A the lr_a values as stored, quantized when an earlier rule quantized
// them: lr_a comes first in model order). A weighted or gptq rule matching any other tensor is
// an error when planned.
//
// Rules are tried in order and the first whose targets match (and ignore does not) decides;
// tensors no rule matches keep their encoding. Tensors whose current encoding is not one of
// this pass's (b1, i32, ... chosen by other passes for exact reasons) are left alone.
//
// Report rows (one per matched tensor): action "encode <enc>" (or "keep <enc>"), shape, the
// encoding before and after, bytes before and after (format::encoded_tensor_bytes), metric
// rel_err = ||W - Q||_F / ||W||_F with Q the values the file will hold (through the format's
// codec for rtn), extra {rule (1-based), encoding}, and for weighted/gptq rules (or every rule
// with output_error = true) extra method and output_error = ||(W - Q) X||_F / ||W X||_F =
// sqrt(tr(ΔW C ΔWᵀ) / tr(W C Wᵀ)) with the undamped moment C (null for a tensor without one).
// A rule that matches no tensor of the model as the passes before it leave it is a warning
// (from plan()). Deterministic whatever the thread count: tensors are quantized one after
// another, in model order, single-threaded.
#pragma once

#include <string>
#include <vector>

#include "compress/algo/error_aware_quant.h"
#include "compress/pipeline/option_reader.h"
#include "compress/pipeline/pass.h"
#include "compress/pipeline/tensor_selector.h"

namespace rwkvlite {

// The encodings this pass may choose: f32 f16 bf16 i8 i4g32 i4g64 i4g128 i3g32 i3g64 i3g128
// i2g32 i2g64 i2g128.
const std::vector<std::string>& quantize_encodings();
bool is_quantize_encoding(const std::string& encoding);

// ||W - decode(encode(W))||_F / ||W||_F of a tensor stored in `encoding` (0 for an all-zero
// tensor), encoded and decoded row by row with the format's codec, summed in double in row order.
double round_trip_error(const Tensor& values, const std::string& encoding);
// ||w - q|| / ||w|| of two equally long value vectors, in double (0 when w is all zero).
double relative_error(const std::vector<float>& w, const std::vector<float>& q);

enum class QuantizeMethod { RoundToNearest, Weighted, Gptq };
const char* quantize_method_name(QuantizeMethod m);  // "rtn", "weighted", "gptq"


struct QuantizeRule {
  std::vector<std::string> targets;
  std::vector<std::string> ignore;
  std::string encoding;
  QuantizeMethod method = QuantizeMethod::RoundToNearest;
  double damping = kDefaultGptqDamping;  // gptq only
};

// Whether `name` (a tensor of `model`) has input statistics the weighted and gptq methods can use.
bool has_input_statistics(const std::string& name);

// Config keys of a [[pass]] table of this type (defaults shown; docs/config.md):
//
//   type = "quantize"          # sets each tensor's storage encoding; values are untouched here
//   rules = [                  # first rule whose targets match (and ignore does not) wins;
//     { targets = ["**.lr_a", "**.lr_b"], encoding = "i8" },   # tensors no rule matches keep
//     { targets = ["head.weight"], ignore = [], encoding = "f16" },  # their encoding
//   ]                          # encodings: f32 f16 bf16 i8 i4g32 i4g64 i4g128 i3g32 i3g64
//                              #   i3g128 i2g32 i2g64 i2g128
//   # per rule, for the integer encodings (i8, i4g*, i3g*, i2g*):
//   #   method = "rtn"         # rtn | weighted | gptq (weighted and gptq need calibration)
//   #   damping = 0.01         # gptq only: λ of E[x xᵀ] + λ·mean(diag)·I          [0, 1]
//   output_error = false       # also measure output_error for rtn rules (needs calibration)

struct QuantizeOptions {
  std::vector<QuantizeRule> rules;
  bool output_error = false;

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
  bool needs_calibration() const override;
  // Weighted and GPTQ rules and output_error read only the input moments.
  CalibrationUse calibration_use() const override { return {.input_moments = needs_calibration()}; }
  // Sets the encodings run() sets; warns about rules that match no tensor. UsageError when a
  // weighted or gptq rule matches a tensor without input statistics.
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
