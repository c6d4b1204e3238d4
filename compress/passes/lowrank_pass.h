// The "lowrank" pass: replaces selected dense projections <base>.weight [out, in] by factors
// <base>.lr_a [r, in] and <base>.lr_b [out, r] (W ~= lr_b · lr_a; naming in
// pipeline/compressed_model.h), plain or activation-aware (compress/algo/lowrank.h for the math).
//
// Defaults follow RWKV-Lite: att.receptance/key/value/gate with r = min(out, in) / 8;
// att.output and the FFN are left alone. Config keys: above LowRankOptions.
//
// Report rows (one per targeted matrix):
//   action        "lowrank r=<r>", or "keep dense (...)" when no rank the rule allows saves
//                 parameters (r·(out+in) >= out·in)
//   bytes         FP32 before (4·out·in) and after (4·r·(out+in), or unchanged)
//   shape         [out, in]; encodings before (the weight's) and after (f32 factors)
//   metric        rel_err = ||W - lr_b·lr_a||_F / ||W||_F of the stored FP32 factors (none
//                 when kept dense); seconds of the factorisation
//   extra         rank, weight_error, output_error (sqrt(tr(ΔW C ΔWᵀ)/tr(W C Wᵀ)) with the
//                 undamped calibration C, null without calibration), svd (back end used),
//                 whitening (none/cholesky/eigen), note (fallbacks)
// Deterministic whatever ctx.threads: matrices are computed independently (several at a
// time, on runtime/engine's ThreadPool), reported in model order as they finish and applied
// in model order; Eigen itself runs single-threaded.
#pragma once

#include <string>
#include <vector>

#include "compress/algo/lowrank.h"
#include "compress/algo/svd.h"
#include "compress/pipeline/option_reader.h"
#include "compress/pipeline/pass.h"
#include "compress/pipeline/tensor_selector.h"

namespace rwkvlite {

enum class RankRule { Fixed, Divisor, Energy, Budget };
const char* rank_rule_key(RankRule r);  // the config key choosing it: rank, divisor, energy, budget

// RWKV-Lite's targets: every layer's att receptance, key, value and gate.
std::vector<std::string> default_lowrank_targets();

// Config keys of a [[pass]] table of this type (defaults shown; docs/config.md):
//
//   type = "lowrank"           # SVD factorisation W [out,in] ~= lr_b [out,r] · lr_a [r,in]
//   targets = ["blocks.*.att.receptance.weight", "blocks.*.att.key.weight",
//              "blocks.*.att.value.weight", "blocks.*.att.gate.weight"]   # default (RWKV-Lite)
//   ignore = []                # default
//   # the rank rule: at most one of the next four keys; none means divisor = 8
//   rank = 64                  # fixed rank for every target                      (>= 1)
//   divisor = 8                # r = min(out, in) / divisor                        (>= 1)
//   energy = 0.9               # smallest r keeping this fraction of sum(S²)       (0, 1]
//                              # (S of W, or of W·L when activation_aware)
//   budget = 0.25              # parameters of all targets after / before, shared  (0, 1]
//                              # greedily by error reduction per parameter; the error is
//                              # the output error when calibration is present, else the
//                              # weight error, each relative to the matrix's own scale
//   activation_aware = false   # whiten with the calibration E[x xᵀ] (SVD-LLM); needs calibration
//   damping = 0.01             # λ: factor C + λ·mean(diag C)·I                   [0, 1]
//   svd = "auto"               # auto | exact (BDCSVD) | partial (Spectra)
//   # any rank whose factors would not be smaller than the dense matrix keeps it dense.

struct LowRankOptions {
  std::vector<std::string> targets = default_lowrank_targets();
  std::vector<std::string> ignore;
  RankRule rule = RankRule::Divisor;
  int rank = 0;        // Fixed
  int divisor = 8;     // Divisor
  double energy = 0;   // Energy: (0, 1]
  double budget = 0;   // Budget: (0, 1], parameters after / before over all targets
  bool activation_aware = false;
  double damping = kDefaultWhiteningDamping;
  SvdMethod svd = SvdMethod::Auto;

  // Reads and validates a [[pass]] table of type "lowrank" (UsageError with location).
  static LowRankOptions read(OptionReader& reader);
  // Throws UsageError (no location) when a value is out of range or a pattern is malformed;
  // for options built in code.
  void check() const;
};

class LowRankPass : public Pass {
 public:
  explicit LowRankPass(LowRankOptions options);  // calls options.check()

  bool needs_calibration() const override { return options_.activation_aware; }
  CalibrationUse calibration_use() const override { return {.input_moments = options_.activation_aware}; }
  // UsageError when nothing matches, a match is not a 2-D "<base>.weight", or a budget
  // cannot give every target rank 1.
  void validate(const CompressedModel& model) const override;
  // Exact for rank / divisor. The energy and budget rules choose ranks from singular values:
  // the plan notes that as unknown and factors every target at its largest useful rank.
  void plan(CompressPlan& plan) const override;
  std::vector<PassReportRow> run(PassContext& ctx) override;

  // The names this pass would factor in `model`, in model order.
  std::vector<std::string> selected(const CompressedModel& model) const;
  const LowRankOptions& options() const { return options_; }

 private:
  LowRankOptions options_;
  TensorSelector selector_;
};

}  // namespace rwkvlite
