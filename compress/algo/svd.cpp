#include "compress/algo/svd.h"

#include <Spectra/contrib/PartialSVDSolver.h>

#include <algorithm>
#include <stdexcept>

#include "runtime/core/error.h"

namespace rwkvlite {

namespace {

// Auto's thresholds (see resolve_svd_method).
constexpr int64_t kPartialMinDim = 256;
constexpr int64_t kPartialMaxRankDivisor = 4;
// Lanczos settings: ncv = 2r+1 basis vectors is Spectra's recommended minimum (ncv >= 2k);
// the tolerance is relative to each eigenvalue of the Gram matrix, i.e. about 1e-10 relative
// on S² before the Ritz step refines S further.
constexpr int kSpectraMaxIterations = 1000;
constexpr double kSpectraTolerance = 1e-10;

Eigen::Index spectra_ncv(Eigen::Index n, int rank) { return std::min<Eigen::Index>(n, 2 * Eigen::Index(rank) + 1); }

bool spectra_can_serve(Eigen::Index rows, Eigen::Index cols, int rank) {
  const Eigen::Index n = std::min(rows, cols);
  // 1 <= k <= n-1 and k < ncv <= n.
  return rank >= 1 && rank <= n - 1 && rank < spectra_ncv(n, rank);
}

TruncatedSvd exact_svd(const Eigen::MatrixXd& A, int rank) {
  Eigen::BDCSVD<Eigen::MatrixXd> svd(A, Eigen::ComputeThinU | Eigen::ComputeThinV);
  TruncatedSvd out;
  out.U = svd.matrixU().leftCols(rank);
  out.S = svd.singularValues().head(rank);
  out.V = svd.matrixV().leftCols(rank);
  out.method_used = SvdMethod::Exact;
  return out;
}

// Spectra on the Gram matrix of the smaller side, then one Rayleigh-Ritz step. Returns false
// (leaving `out` untouched) when Spectra does not converge every requested value.
bool partial_svd(const Eigen::MatrixXd& A, int rank, TruncatedSvd& out) {
  const Eigen::Index n = std::min(A.rows(), A.cols());
  Spectra::PartialSVDSolver<Eigen::MatrixXd> solver(A, rank, spectra_ncv(n, rank));
  const Eigen::Index nconv = solver.compute(kSpectraMaxIterations, kSpectraTolerance);
  if (nconv != rank) return false;

  // Spectra works on AᵀA when rows > cols (its eigenvectors are V) and on AAᵀ otherwise
  // (eigenvectors are U); take only that side, which involves no division by sigma.
  if (A.rows() > A.cols()) {
    const Eigen::MatrixXd Q = solver.matrix_V(rank);  // cols x r
    const Eigen::MatrixXd B = A * Q;                  // rows x r
    Eigen::BDCSVD<Eigen::MatrixXd> small(B, Eigen::ComputeThinU | Eigen::ComputeThinV);
    out.U = small.matrixU();
    out.S = small.singularValues();
    out.V = Q * small.matrixV();
  } else {
    const Eigen::MatrixXd Q = solver.matrix_U(rank);  // rows x r
    const Eigen::MatrixXd B = Q.transpose() * A;      // r x cols
    Eigen::BDCSVD<Eigen::MatrixXd> small(B, Eigen::ComputeThinU | Eigen::ComputeThinV);
    out.U = Q * small.matrixU();
    out.S = small.singularValues();
    out.V = small.matrixV();
  }
  out.method_used = SvdMethod::Partial;
  return true;
}

}  // namespace

const char* svd_method_name(SvdMethod m) {
  switch (m) {
    case SvdMethod::Exact: return "exact";
    case SvdMethod::Partial: return "partial";
    case SvdMethod::Auto: return "auto";
  }
  return "?";
}

bool svd_method_from_name(const std::string& name, SvdMethod& out) {
  for (SvdMethod m : {SvdMethod::Exact, SvdMethod::Partial, SvdMethod::Auto}) {
    if (name == svd_method_name(m)) {
      out = m;
      return true;
    }
  }
  return false;
}

double TruncatedSvd::discarded_energy() const {
  // Clamped: total and kept agree to rounding when nothing is discarded (full rank).
  return std::max(0.0, total_energy - S.squaredNorm());
}

Eigen::MatrixXd TruncatedSvd::reconstruct() const { return U * S.asDiagonal() * V.transpose(); }

SvdMethod resolve_svd_method(int64_t rows, int64_t cols, int rank, SvdMethod requested) {
  const bool servable = spectra_can_serve(rows, cols, rank);
  if (requested == SvdMethod::Exact || !servable) return SvdMethod::Exact;
  if (requested == SvdMethod::Partial) return SvdMethod::Partial;
  const int64_t n = std::min(rows, cols);
  return (n >= kPartialMinDim && rank <= n / kPartialMaxRankDivisor) ? SvdMethod::Partial : SvdMethod::Exact;
}

TruncatedSvd truncated_svd(const Eigen::MatrixXd& A, int rank, SvdMethod method) {
  const Eigen::Index n = std::min(A.rows(), A.cols());
  if (rank < 1 || rank > n) {
    throw Error("truncated_svd: rank " + std::to_string(rank) + " is outside [1, " + std::to_string(n) +
                    "] for a " + std::to_string(A.rows()) + "x" + std::to_string(A.cols()) + " matrix",
                kExitInternal);
  }
  const SvdMethod resolved = resolve_svd_method(A.rows(), A.cols(), rank, method);
  TruncatedSvd out;
  bool done = false;
  if (resolved == SvdMethod::Partial) {
    done = partial_svd(A, rank, out);
    if (!done) out.note = "Spectra did not converge all " + std::to_string(rank) + " values; used exact SVD";
  } else if (method == SvdMethod::Partial) {
    out.note = "rank " + std::to_string(rank) + " is outside Spectra's range [1, " + std::to_string(n - 1) +
               "]; used exact SVD";
  }
  if (!done) {
    const std::string note = out.note;
    out = exact_svd(A, rank);
    out.note = note;
  }
  out.total_energy = A.squaredNorm();
  return out;
}

TruncatedSvd truncated_svd(const Eigen::MatrixXf& W, int rank, SvdMethod method) {
  return truncated_svd(Eigen::MatrixXd(W.cast<double>()), rank, method);
}

Eigen::VectorXd singular_values(const Eigen::MatrixXd& A) {
  Eigen::BDCSVD<Eigen::MatrixXd> svd(A);  // no ComputeThin* flags: values only
  return svd.singularValues();
}

}  // namespace rwkvlite
