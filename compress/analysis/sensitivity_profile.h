// The sensitivity profile: for every weight matrix of a model and every storage fidelity, what
// holding that one matrix alone at that fidelity (round to nearest, through the format's codec)
// costs on calibration text, everything else staying dense FP32.
//
// The cost is KL(dense || perturbed) summed over the text's positions, in bits per text byte:
// the expected rise in bits per byte when the text follows the dense model. The measured rise
// of bits per byte on the text itself is recorded beside it, but on a few thousand tokens a
// single matrix's rise is dominated by which way the perturbation happens to push those tokens
// (on the reference model, i3 and i4 rises of one matrix rank-correlate at -0.02 over 50
// matrices); KL is never negative and far steadier, so the planners use it.
//
// It is the one importance measure of two consumers: mixed-precision compression (choose an
// encoding per tensor for a byte target, compress/analysis/mixed_precision.h) and the elastic
// runtime's memory-budget planner (runtime/plan/budget_planner.h).
//
// Direct mode evaluates the model once per (tensor, fidelity). Proxy mode evaluates once per
// tensor, at the probe fidelity, and scales the probe's KL by the ratio of squared relative
// round-trip errors: KL(t, f) ≈ KL(t, probe) · (err(t, f) / err(t, probe))², as a KL that is
// locally quadratic in a perturbation of fixed direction scales. With validate_proxy both run,
// and the report gives the Spearman rank correlation of proxy against direct costs.
//
// Low-rank fidelities "lr<R>:<encoding>" (for example lr32:i8) hold a block projection as its
// plain rank-R truncated SVD factors (compress/algo/lowrank.h), each factor round-tripped
// through <encoding>: what a lowrank pass with `rank = R` followed by a quantize rule for the
// factors writes. Their error is not the quantization noise whose scaling the proxy assumes,
// so they are always evaluated directly. They do not apply (FidelityCost::available false) to
// other tensors, or where rank R would not shrink the matrix (max_useful_rank).
//
// Deterministic for any thread count: every evaluation is the dense engine's, which does not
// depend on its threads, over the same tokens.
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "compress/algo/held_matrix.h"
#include "runtime/core/model.h"

namespace rwkvlite {

// Calibration tokens and each token's byte length (the denominator of bits per byte).
struct ProfileText {
  std::vector<int32_t> tokens;
  std::vector<int32_t> token_bytes;
};

struct SensitivityOptions {
  // Encodings to profile (quantize_encodings() names), e.g. {"i2g64", "i3g64", "i4g64", "i8", "f16"},
  // and low-rank fidelities ("lr32:i8").
  std::vector<std::string> fidelities = {"i2g64", "i3g64", "i4g64", "i8", "f16"};
  bool direct = false;              // evaluate every (tensor, fidelity); else the proxy
  std::string probe = "i2g64";      // proxy: the fidelity evaluated directly (one of fidelities)
  bool validate_proxy = false;      // proxy and direct both, with their rank correlation
  // Input second moments E[x xᵀ] by canonical weight name (CalibrationData::input_second_moment,
  // from the calibration compress runs). When given ("gptq" profiles), each matrix that has one
  // is held as compress holds it under `method = "gptq"` and activation-aware low rank: integer
  // encodings by GPTQ error compensation, low-rank factors from the SVD of the whitened matrix
  // with integer factors by GPTQ, and the proxy scales by the squared ratio of output errors
  // (GPTQ trades weight error for output error). Other matrices as without.
  const std::map<std::string, Eigen::MatrixXd>* input_moments = nullptr;
  int threads = 2;
  // Called after each evaluation with (done, total).
  std::function<void(int64_t, int64_t)> progress;
};

// A low-rank fidelity's rank and factor encoding; nullopt when `name` is not "lr<R>:<encoding>".
// UsageError for a name that starts "lr" but is malformed (rank < 1, unknown encoding).
std::optional<LowRankFidelity> parse_lowrank_fidelity(const std::string& name);

struct FidelityCost {
  std::string encoding;                    // a quantize encoding or a low-rank fidelity name
  bool available = true;                   // false: does not apply to this tensor (no other field is set)
  int64_t bytes = 0;                       // format::encoded_tensor_bytes
  double relative_error = 0;               // ||W - Q||_F / ||W||_F
  std::optional<double> output_error;      // sqrt(tr(ΔW C ΔWᵀ) / tr(W C Wᵀ)), gptq profiles with C
  double cost = 0;                         // KL bits per byte: direct when measured, else the proxy
  bool measured = false;                   // cost came from an evaluation
  std::optional<double> proxy_cost;        // the proxy's estimate (proxy mode)
  std::optional<double> direct_cost;       // the evaluated KL (direct mode, the probe, validation)
  std::optional<double> delta_bits_per_byte;  // evaluated bits per byte minus the base's
};

struct TensorSensitivity {
  std::string name;
  int64_t rows = 0, cols = 0;       // as the file stores the matrix (a LoRA factor transposed)
  std::vector<FidelityCost> costs;  // in SensitivityOptions::fidelities order
};

struct SensitivityProfile {
  std::string mode;                  // "direct", "proxy" or "proxy+direct"
  std::string method = "rtn";        // "rtn", or "gptq" when input moments were given
  std::vector<std::string> fidelities;
  std::string probe;                 // "" in direct mode
  int64_t tokens_scored = 0;
  double base_bits_per_byte = 0;     // the dense FP32 model on the same tokens
  int64_t profiled_parameters = 0;   // elements of the profiled tensors
  int64_t fixed_bytes = 0;           // the other tensors (norms, mixes, decays) in FP32
  int64_t dense_fp16_bytes = 0;      // every parameter at 2 bytes: the budgets' 100%
  int64_t evaluations = 0;
  double seconds = 0;
  std::vector<TensorSensitivity> tensors;  // model order (std::map order of names)
  // validate_proxy only: over every non-probe (tensor, fidelity) pair, and per fidelity across
  // tensors (the ranking the planner relies on).
  std::optional<double> proxy_spearman_all;
  std::vector<std::pair<std::string, double>> proxy_spearman_per_fidelity;
};

// The tensors profiled: every projection matrix (layout::is_projection_weight), every 2-D LoRA
// factor (layout::is_lora_factor; costed as stored, transposed) and emb.weight.
bool is_profiled_tensor(const std::string& name);

// UsageError for an unknown or repeated fidelity, a probe not among them (or low-rank), or too
// few tokens.
SensitivityProfile profile_sensitivity(const Model& model, const ProfileText& text, const SensitivityOptions& options);

// Spearman's rank correlation of two equally long samples (average ranks for ties); NaN when
// either is constant or shorter than 2.
double spearman_rank_correlation(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace rwkvlite
