#include "compress/algo/lowrank.h"

#include <algorithm>
#include <cmath>
#include <queue>

#include "runtime/core/error.h"

namespace rwkvlite {

// ---- Rank rules ---------------------------------------------------------------------------

int max_useful_rank(int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return 0;
  // r·(rows+cols) < rows·cols  <=>  r <= (rows·cols - 1) / (rows+cols)
  const int64_t r = (rows * cols - 1) / (rows + cols);
  return static_cast<int>(std::min<int64_t>(r, std::min(rows, cols)));
}

int rank_for_divisor(int64_t rows, int64_t cols, int divisor) {
  return static_cast<int>(std::max<int64_t>(1, std::min(rows, cols) / std::max(1, divisor)));
}

int rank_for_energy(const Eigen::VectorXd& s, double fraction) {
  const double total = s.squaredNorm();
  if (total <= 0) return 1;
  double kept = 0;
  for (Eigen::Index i = 0; i < s.size(); ++i) {
    kept += s[i] * s[i];
    if (kept >= fraction * total) return static_cast<int>(i + 1);
  }
  return static_cast<int>(s.size());  // fraction 1 may miss by rounding: everything
}

std::vector<RankChoice> allocate_budget(const std::vector<BudgetItem>& items, int64_t budget_params) {
  std::vector<RankChoice> choice(items.size());
  std::vector<int> r_max(items.size());
  int64_t used = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    if (it.gains.size() != std::min(it.rows, it.cols)) {
      throw Error("allocate_budget: item " + std::to_string(i) + " needs min(rows, cols) gains", kExitInternal);
    }
    r_max[i] = max_useful_rank(it.rows, it.cols);
    if (r_max[i] == 0) {
      choice[i].keep_dense = true;  // too small for any rank to save parameters
      used += it.rows * it.cols;
    } else {
      choice[i].rank = 1;
      used += it.rows + it.cols;
    }
  }
  if (used > budget_params) {
    throw UsageError("a parameter budget of " + std::to_string(budget_params) + " cannot give each of the " +
                     std::to_string(items.size()) + " targeted matrices even rank 1 (needs " +
                     std::to_string(used) + ")");
  }

  struct Step {
    double ratio;  // gain per parameter
    double gain;
    int64_t cost;
    size_t item;
  };
  // Largest ratio first; equal ratios: the earlier item (determinism without relying on the
  // heap's internal order).
  auto worse = [](const Step& a, const Step& b) {
    if (a.ratio != b.ratio) return a.ratio < b.ratio;
    return a.item > b.item;
  };
  std::priority_queue<Step, std::vector<Step>, decltype(worse)> heap(worse);
  auto next_step = [&](size_t i) {
    const auto& it = items[i];
    const int r = choice[i].rank;
    if (choice[i].keep_dense) return;
    Step s{0, 0, 0, i};
    if (r < r_max[i]) {
      s.gain = it.gains[r];
      s.cost = it.rows + it.cols;
    } else {
      s.gain = it.gains.tail(it.gains.size() - r).sum();
      s.cost = it.rows * it.cols - int64_t(r) * (it.rows + it.cols);
    }
    if (!(s.gain > 0)) return;  // nothing left to gain (exactly low-rank): stop spending here
    s.ratio = s.gain / double(s.cost);
    heap.push(s);
  };
  for (size_t i = 0; i < items.size(); ++i) next_step(i);

  while (!heap.empty()) {
    const Step s = heap.top();
    heap.pop();
    if (used + s.cost > budget_params) continue;  // this matrix's next step no longer fits
    used += s.cost;
    if (choice[s.item].rank < r_max[s.item]) {
      ++choice[s.item].rank;
    } else {
      choice[s.item].keep_dense = true;
    }
    next_step(s.item);
  }
  return choice;
}

// ---- Whitening ----------------------------------------------------------------------------

Whitening Whitening::from_second_moment(const Eigen::MatrixXd& C, double damping) {
  if (C.rows() != C.cols() || C.rows() == 0) {
    throw InputError("input second moment must be square, got " + std::to_string(C.rows()) + "x" +
                     std::to_string(C.cols()));
  }
  if (!C.allFinite()) throw InputError("input second moment has non-finite entries");
  const double mean_diag = C.diagonal().mean();
  if (!(mean_diag > 0)) throw InputError("input second moment is zero: the input never carries any signal");

  // Symmetrise: accumulated E[x xᵀ] is symmetric only up to rounding, and both factorisations
  // read one triangle.
  Eigen::MatrixXd damped = 0.5 * (C + C.transpose());
  damped.diagonal().array() += damping * mean_diag;

  Whitening w;
  Eigen::LLT<Eigen::MatrixXd> llt(damped);
  if (llt.info() == Eigen::Success) {
    w.kind_ = "cholesky";
    w.L_ = llt.matrixL();
    return w;
  }
  // Not positive definite after damping (damping 0 on a singular C, or a C that is not PSD
  // beyond rounding): clamp the spectrum to a floor far above rounding but far below signal.
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(damped);
  const Eigen::VectorXd ev = eig.eigenvalues();
  const double floor = std::max(1e-10 * ev.maxCoeff(), 1e-300);
  w.kind_ = "eigen";
  w.Q_ = eig.eigenvectors();
  w.sqrt_eval_.resize(ev.size());
  for (Eigen::Index i = 0; i < ev.size(); ++i) {
    double v = ev[i];
    if (!(v >= floor)) {
      v = floor;
      ++w.clamped_;
    }
    w.sqrt_eval_[i] = std::sqrt(v);
  }
  return w;
}

Eigen::MatrixXd Whitening::whiten(const Eigen::MatrixXd& W) const {
  if (kind_ == "cholesky") return W * L_.triangularView<Eigen::Lower>();
  return (W * Q_) * sqrt_eval_.asDiagonal();
}

Eigen::MatrixXd Whitening::unwhiten(const Eigen::MatrixXd& X) const {
  if (kind_ == "cholesky") {
    // Y·L = X by substitution.
    return L_.triangularView<Eigen::Lower>().solve<Eigen::OnTheRight>(X);
  }
  return (X * sqrt_eval_.cwiseInverse().asDiagonal()) * Q_.transpose();
}

// ---- Factorisation ------------------------------------------------------------------------

LowRankFactors factors_from_svd(const TruncatedSvd& svd, int rank, const Whitening* whitening) {
  if (rank < 1 || rank > svd.rank()) {
    throw Error("factors_from_svd: rank " + std::to_string(rank) + " exceeds the " + std::to_string(svd.rank()) +
                    " computed singular values",
                kExitInternal);
  }
  const Eigen::VectorXd root = svd.S.head(rank).cwiseSqrt();
  const Eigen::MatrixXd b = svd.U.leftCols(rank) * root.asDiagonal();
  Eigen::MatrixXd a = root.asDiagonal() * svd.V.leftCols(rank).transpose();
  if (whitening != nullptr) a = whitening->unwhiten(a);
  LowRankFactors f;
  f.a = a.cast<float>();
  f.b = b.cast<float>();
  f.method_used = svd.method_used;
  f.note = svd.note;
  return f;
}

LowRankFactors factorize(const Eigen::MatrixXd& W, int rank, SvdMethod method, const Whitening* whitening) {
  const TruncatedSvd svd = truncated_svd(whitening ? whitening->whiten(W) : W, rank, method);
  return factors_from_svd(svd, rank, whitening);
}

std::optional<double> relative_output_error(const Eigen::MatrixXd& W, const Eigen::MatrixXd& W_hat,
                                            const Eigen::MatrixXd& C) {
  const Eigen::MatrixXd delta = W - W_hat;
  const double reference = (W * C).cwiseProduct(W).sum();  // tr(W C Wᵀ)
  if (!(reference > 0)) return std::nullopt;
  const double err = (delta * C).cwiseProduct(delta).sum();
  return std::sqrt(std::max(0.0, err) / reference);
}

LowRankErrors measure_errors(const Eigen::MatrixXd& W, const LowRankFactors& f, const Eigen::MatrixXd* C) {
  const Eigen::MatrixXd W_hat = f.b.cast<double>() * f.a.cast<double>();
  LowRankErrors e;
  const double norm = W.norm();
  e.weight = norm > 0 ? (W - W_hat).norm() / norm : 0.0;
  if (C != nullptr) e.output = relative_output_error(W, W_hat, *C);
  return e;
}

}  // namespace rwkvlite
