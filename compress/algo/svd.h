// Truncated singular value decomposition A ~= U_r diag(S_r) V_rᵀ, exact or partial.
//
// Two back ends:
//   Exact    Eigen::BDCSVD with thin U and V, then the first r triplets. Exact to double
//            precision for every singular value; the reference in tests.
//   Partial  Spectra's PartialSVDSolver (Lanczos on AᵀA or AAᵀ, whichever is smaller), then a
//            Rayleigh-Ritz step: with Q the r converged eigenvectors of the Gram matrix, the
//            small SVD of A·Q (or Qᵀ·A) gives U, S, V. The Gram matrix squares the condition
//            number, so its eigenvalues lose the small singular values' digits; the Ritz step
//            recomputes S and the missing side's vectors from A itself (no division by tiny
//            sigma, which Spectra's own matrix_U/matrix_V would do), keeping the top-r values
//            accurate to double rounding relative to ||A||.
//   Auto     Partial when it is clearly cheaper and safe, Exact otherwise (see
//            resolve_svd_method for the rule and the timings behind it).
// Spectra's preconditions (1 <= r <= n-1, r < ncv <= n with n = min(rows, cols)) are checked
// before it is called; when they fail, or the solver does not converge all r values, the
// result falls back to Exact and says so in `note`. Everything is computed in double: W·L of
// the activation-aware mode can be badly conditioned, and the cost is a small factor.
// Deterministic: BDCSVD has no randomness and Spectra starts from a fixed seed.
#pragma once

#include <Eigen/Dense>

#include <string>

namespace rwkvlite {

enum class SvdMethod { Exact, Partial, Auto };

const char* svd_method_name(SvdMethod m);  // "exact", "partial", "auto"
// Inverse of svd_method_name; false when the name is unknown.
bool svd_method_from_name(const std::string& name, SvdMethod& out);

struct TruncatedSvd {
  Eigen::MatrixXd U;  // rows x r, orthonormal columns
  Eigen::VectorXd S;  // r singular values, descending
  Eigen::MatrixXd V;  // cols x r, orthonormal columns
  SvdMethod method_used = SvdMethod::Exact;  // never Auto
  double total_energy = 0;  // ||A||_F² = sum of all squared singular values
  std::string note;         // why a requested Partial ran as Exact, empty otherwise

  int rank() const { return static_cast<int>(S.size()); }
  // ||A - U S Vᵀ||_F², which Eckart-Young says is the sum of the discarded S²; computed as
  // total - kept so that it needs no more than the top r values.
  double discarded_energy() const;
  Eigen::MatrixXd reconstruct() const;  // U diag(S) Vᵀ
};

// Which back end Auto picks for a rows x cols matrix at this rank:
//   Partial when n = min(rows, cols) >= 256 and rank <= n / 4, Exact otherwise.
// BDCSVD costs O(rows·cols·n) whatever the rank; Lanczos costs about O(rows·cols·ncv) per
// restart with ncv = 2r+1, so its advantage shrinks as r grows. Measured here (one thread,
// double, square matrices with a 1/sqrt(i) spectrum / Gaussian entries; the test
// "timing: BDCSVD vs Spectra"): n=1024 r=128 BDCSVD 2.3 s vs Spectra 0.4/0.65 s; r=256
// 2.3 s vs 0.85/1.6 s; n=2048 r=128 18.9 s vs 2.9/5.3 s; r=512 19-22 s vs 14-21 s (parity
// on the hard Gaussian case, hence the n/4 limit). Below n ~ 256 both take milliseconds and
// BDCSVD is the simpler path. With the Ritz step both agree to ~1e-14 relative, so the
// choice is about time only. Requests that Spectra cannot serve are Exact.
SvdMethod resolve_svd_method(int64_t rows, int64_t cols, int rank, SvdMethod requested);

// The leading `rank` singular triplets of A. rank must be in [1, min(rows, cols)]
// (otherwise Error, exit code internal: callers choose ranks).
TruncatedSvd truncated_svd(const Eigen::MatrixXd& A, int rank, SvdMethod method);
TruncatedSvd truncated_svd(const Eigen::MatrixXf& W, int rank, SvdMethod method);

// Every singular value of A, descending (BDCSVD without vectors, much cheaper than with).
Eigen::VectorXd singular_values(const Eigen::MatrixXd& A);

}  // namespace rwkvlite
