// The mathematics of low-rank compression, independent of models and configs:
// rank rules, activation whitening, factorisation and error measures.
//
// A dense W [out, in] becomes W ~= B·A with A = lr_a [r, in] and B = lr_b [out, r].
//
// Plain mode takes the truncated SVD W ~= U_r S_r V_rᵀ and splits sqrt(S_r) to both sides
// (A = sqrt(S_r) V_rᵀ, B = U_r sqrt(S_r), RWKV-Lite's split; it balances the factors' scales,
// which matters once they are quantized). Eckart-Young: this minimises ||W - B·A||_F.
//
// Activation-aware mode (SVD-LLM's whitening) minimises the expected output error instead:
// with C = E[x xᵀ] of the projection's input, E||(W - Ŵ)x||² = tr(ΔW C ΔWᵀ) = ||ΔW L||_F² for
// any C = L Lᵀ, so the truncated SVD of W·L minimises it; folding L back gives
// A = sqrt(S_r) V_rᵀ L⁻¹ (a triangular solve, never an explicit inverse). C is damped,
// C + λ·mean(diag C)·I, before factoring: calibration C is often singular (channels that are
// constant or never active over a few hundred thousand tokens) and nearly singular directions
// would otherwise get factors with huge entries fitted to noise. λ = 1e-2 (GPTQ's percdamp
// default) bounds the condition number of the damped C by about 100·in while changing the
// weighting only of directions below 1% of the average channel energy.
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compress/algo/svd.h"

namespace rwkvlite {

constexpr double kDefaultWhiteningDamping = 1e-2;

// ---- Rank rules ---------------------------------------------------------------------------

// Largest rank whose factors r·(out+in) have fewer parameters than the dense out·in;
// 0 when no rank saves anything (tiny matrices).
int max_useful_rank(int64_t rows, int64_t cols);

// r = min(rows, cols) / divisor (at least 1): RWKV-Lite's rule with divisor 8.
int rank_for_divisor(int64_t rows, int64_t cols, int divisor);

// The smallest r whose leading singular values keep at least `fraction` of sum(s²).
// `s` descending; fraction in (0, 1].
int rank_for_energy(const Eigen::VectorXd& s, double fraction);

// One matrix of a global parameter budget.
struct BudgetItem {
  int64_t rows = 0, cols = 0;
  // gains[i]: reduction of this matrix's (relative, squared) error from adding component i,
  // i.e. s_i² / sum(s²) for the weight error. Must have min(rows, cols) entries.
  Eigen::VectorXd gains;
};

// A rank decision: either factors of rank `rank`, or the dense matrix kept.
struct RankChoice {
  int rank = 0;
  bool keep_dense = false;
};

// Distributes `budget_params` (parameters of all the items after compression: r·(rows+cols)
// per factored matrix, rows·cols per dense one) greedily by error reduction per parameter:
// every item starts at rank 1, then the step with the largest gain/cost is taken while it
// fits, where a step adds one component (cost rows+cols) or, from max_useful_rank, keeps the
// matrix dense (cost the remaining difference, gain the remaining error). Gains of one matrix
// decrease with i, so the greedy order is the optimal one for the relaxed (fractional)
// problem; ties go to the earlier item, which makes the result deterministic.
// Throws UsageError when the budget cannot give every item rank 1.
std::vector<RankChoice> allocate_budget(const std::vector<BudgetItem>& items, int64_t budget_params);

// ---- Whitening ----------------------------------------------------------------------------

// A factor L of the damped second moment C + λ·mean(diag C)·I = L Lᵀ, with the two products
// the factorisation needs. Cholesky when it succeeds (L lower triangular, solves by
// substitution); otherwise the eigen-decomposition Q Λ Qᵀ with eigenvalues clamped to a small
// positive floor and L = Q Λ^½ (still L Lᵀ = the clamped C, and L⁻¹ = Λ^-½ Qᵀ exactly).
class Whitening {
 public:
  // Throws InputError when C is not square, not finite, or zero (no direction to weight).
  static Whitening from_second_moment(const Eigen::MatrixXd& C, double damping);

  Eigen::MatrixXd whiten(const Eigen::MatrixXd& W) const;    // W·L
  Eigen::MatrixXd unwhiten(const Eigen::MatrixXd& X) const;  // X·L⁻¹
  const std::string& kind() const { return kind_; }          // "cholesky" or "eigen"
  int clamped_eigenvalues() const { return clamped_; }

 private:
  std::string kind_;
  Eigen::MatrixXd L_;          // cholesky: lower-triangular L
  Eigen::MatrixXd Q_;          // eigen: eigenvectors
  Eigen::VectorXd sqrt_eval_;  // eigen: sqrt of the clamped eigenvalues
  int clamped_ = 0;
};

// ---- Factorisation ------------------------------------------------------------------------

struct LowRankFactors {
  Eigen::MatrixXf a;  // lr_a [r, in]
  Eigen::MatrixXf b;  // lr_b [out, r]
  SvdMethod method_used = SvdMethod::Exact;
  std::string note;  // from the SVD (fallbacks)
};

// Factors of rank `rank`, plain (whitening null) or activation-aware.
LowRankFactors factorize(const Eigen::MatrixXd& W, int rank, SvdMethod method, const Whitening* whitening);

// The rank-`rank` factors from an SVD of W (plain) or of W·L (activation-aware) already taken.
LowRankFactors factors_from_svd(const TruncatedSvd& svd, int rank, const Whitening* whitening);

struct LowRankErrors {
  double weight = 0;             // ||W - B·A||_F / ||W||_F
  std::optional<double> output;  // sqrt(tr(ΔW C ΔWᵀ) / tr(W C Wᵀ)); none without C or when tr(W C Wᵀ) = 0
};

// Errors of the factors as stored (FP32), in double. C is the undamped second moment.
LowRankErrors measure_errors(const Eigen::MatrixXd& W, const LowRankFactors& f, const Eigen::MatrixXd* C);

// Relative output error of any approximation: sqrt(tr(ΔW C ΔWᵀ) / tr(W C Wᵀ)).
std::optional<double> relative_output_error(const Eigen::MatrixXd& W, const Eigen::MatrixXd& W_hat,
                                            const Eigen::MatrixXd& C);

}  // namespace rwkvlite
