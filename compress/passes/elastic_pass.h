// The "elastic" pass: stores every matrix of a sensitivity profile at each of the profile's
// fidelities, so that the runtime chooses one per matrix when it loads, for whatever memory
// budget it is given (rwkvlite-run --memory-budget; runtime/store/elastic_selection.h). The
// profile's predicted cost and the stored bytes of each form go into the file's metadata
// "elastic" (runtime/format/elastic_meta.h); the runtime plans with them exactly as
// `rwkvlite plan` does with the profile.
//
// Each form is what the mixed-precision config of that choice would write (held_matrix.h):
// integer encodings by GPTQ through the input moment where the profile was priced with gptq
// (`rwkvlite profile --method gptq`) and the matrix has one, else round to nearest; low-rank
// fidelities as their two factors, from the SVD of the whitened matrix under gptq. LoRA factors
// are stored transposed, as the profile prices them. A stored form is named
// "<name>@<fidelity>" (its factors "<base>.lr_a@<fidelity>", "<base>.lr_b@<fidelity>"; a LoRA
// factor "<factor>.t@<fidelity>"), and the dense matrix itself is not kept.
//
// The profile must be of this model as the pass finds it: the same parameter count and every
// profiled matrix present in FP32 with the profiled shape, so the pass goes first (or after
// passes that change no profiled matrix). A gptq profile needs calibration; it predicts best
// when the config's [calibration] is the one the profile recorded (bytes [0, 200000) of the
// bundled text, seed 1234: configs/elastic/reference.toml).
//
// Report rows (one per profiled matrix): action "elastic <n> forms", bytes before (FP32) and
// after (all forms), extra {forms: {fidelity: {bytes, cost, output_error}}}. Deterministic for
// any thread count: matrices are computed independently, several at a time, and applied in
// profile order.
#pragma once

#include <string>
#include <vector>

#include "compress/analysis/sensitivity_profile.h"
#include "compress/pipeline/option_reader.h"
#include "compress/pipeline/pass.h"

namespace rwkvlite {

// Config keys of a [[pass]] table of this type (docs/config.md):
//
//   type = "elastic"
//   profile = "../models/reference/sensitivity-profile.json"  # required; relative to the config
//   fidelities = []     # a subset of the profile's, in any order; default (empty): all of them
struct ElasticOptions {
  std::string profile_path;             // resolved
  std::vector<std::string> fidelities;  // empty: the profile's
  SensitivityProfile profile;           // read from profile_path
  std::string profile_xxh64;            // of the profile file's bytes, 16 hex digits

  // Reads the table and the profile file (UsageError with location for a bad key or fidelity,
  // InputError for an unreadable or malformed profile).
  static ElasticOptions read(OptionReader& reader);
};

class ElasticPass : public Pass {
 public:
  explicit ElasticPass(ElasticOptions options);

  // UsageError unless the profile describes this model (parameter count, every profiled matrix
  // present in FP32 with its profiled shape).
  void validate(const CompressedModel& model) const override;
  bool needs_calibration() const override { return options_.profile.method == "gptq"; }
  CalibrationUse calibration_use() const override { return {.input_moments = needs_calibration()}; }
  void plan(CompressPlan& plan) const override;
  std::vector<PassReportRow> run(PassContext& ctx) override;

 private:
  // Per profiled tensor, the indices of its fidelities this pass stores (available and chosen).
  std::vector<std::vector<size_t>> forms_;
  ElasticOptions options_;
};

}  // namespace rwkvlite
