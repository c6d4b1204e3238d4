// Low-rank compression: truncated SVD back ends, rank rules, whitening, budget allocation and
// the lowrank pass on the real tiny v5.2 model.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "converters/rwkvcpp_file.h"
#include "runtime/core/error.h"
#include "compress/algo/lowrank.h"
#include "compress/passes/lowrank_pass.h"
#include "compress/algo/svd.h"
#include "compress/pipeline/compressed_model.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

// Standard normals from raw mt19937_64 bits (Box-Muller), so the test matrices are the same
// with every standard library.
struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  double uniform() { return (static_cast<double>(gen() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  double normal() {
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  Eigen::MatrixXd gaussian(Eigen::Index rows, Eigen::Index cols) {
    Eigen::MatrixXd m(rows, cols);
    for (Eigen::Index j = 0; j < cols; ++j)
      for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = normal();
    return m;
  }
  // rows x cols with orthonormal columns (cols <= rows).
  Eigen::MatrixXd orthonormal(Eigen::Index rows, Eigen::Index cols) {
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(gaussian(rows, cols));
    return qr.householderQ() * Eigen::MatrixXd::Identity(rows, cols);
  }
};

// U diag(s) Vᵀ from random orthogonal factors and chosen singular values.
Eigen::MatrixXd with_spectrum(Rng& rng, Eigen::Index rows, Eigen::Index cols, const Eigen::VectorXd& s) {
  const Eigen::Index n = s.size();
  return rng.orthonormal(rows, n) * s.asDiagonal() * rng.orthonormal(cols, n).transpose();
}

Eigen::VectorXd geometric_spectrum(Eigen::Index n, double first, double ratio) {
  Eigen::VectorXd s(n);
  for (Eigen::Index i = 0; i < n; ++i) s[i] = first * std::pow(ratio, double(i));
  return s;
}

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
Eigen::MatrixXd matrix_of(const Tensor& t) {
  return Eigen::Map<const RowMajorF>(t.data.data(), t.dim(0), t.dim(1)).cast<double>();
}

// Second moment of samples whose channels have very different scales (1e-2 .. 1e2), with
// some correlation between channels: the situation whitening is for.
Eigen::MatrixXd anisotropic_second_moment(Rng& rng, Eigen::Index dim, Eigen::Index samples) {
  Eigen::MatrixXd X = rng.gaussian(samples, dim);
  const Eigen::MatrixXd mix = Eigen::MatrixXd::Identity(dim, dim) + 0.3 * rng.gaussian(dim, dim) / std::sqrt(double(dim));
  X = X * mix;
  for (Eigen::Index j = 0; j < dim; ++j) X.col(j) *= std::pow(10.0, -2.0 + 4.0 * double(j) / double(dim - 1));
  return X.transpose() * X / double(samples);
}

const std::string kTinyV52 = "5v2-730K";

}  // namespace

TEST_CASE("truncated SVD error equals the discarded energy (Eckart-Young)", "[lowrank][svd]") {
  Rng rng(7);
  const Eigen::VectorXd s = geometric_spectrum(64, 3.0, 0.93);
  const Eigen::MatrixXd W = with_spectrum(rng, 96, 80, s);
  for (int r : {1, 8, 16, 32, 63}) {
    for (SvdMethod m : {SvdMethod::Exact, SvdMethod::Partial}) {
      const TruncatedSvd svd = truncated_svd(W, r, m);
      const double discarded = s.tail(s.size() - r).squaredNorm();
      const double actual = (W - svd.reconstruct()).squaredNorm();
      INFO("rank " << r << " method " << svd_method_name(svd.method_used));
      CHECK(svd.method_used == m);
      CHECK(std::fabs(actual - discarded) / discarded < 1e-5);
      CHECK(std::fabs(svd.discarded_energy() - discarded) / discarded < 1e-5);
      CHECK((svd.S - s.head(r)).cwiseAbs().maxCoeff() / s[0] < 1e-10);
    }
  }
  // The FP32 overload (the pass's input type) on the same matrix: the float rounding of W
  // moves the tail energy by ~1e-7 relative to ||W||².
  const Eigen::MatrixXf Wf = W.cast<float>();
  const TruncatedSvd svd = truncated_svd(Wf, 16, SvdMethod::Exact);
  const double discarded = s.tail(s.size() - 16).squaredNorm();
  CHECK(std::fabs((Wf.cast<double>() - svd.reconstruct()).squaredNorm() - discarded) / discarded < 1e-5);
}

TEST_CASE("BDCSVD and Spectra agree on values and vectors and reconstruction", "[lowrank][svd]") {
  Rng rng(11);
  struct Shape {
    Eigen::Index rows, cols;
  };
  for (Shape shape : {Shape{600, 400}, Shape{300, 500}, Shape{256, 256}}) {
    const Eigen::Index n = std::min(shape.rows, shape.cols);
    // A slowly decaying spectrum, like trained projections (no clean gap at r).
    Eigen::VectorXd s(n);
    for (Eigen::Index i = 0; i < n; ++i) s[i] = 1.0 / std::sqrt(1.0 + double(i));
    const Eigen::MatrixXd A = with_spectrum(rng, shape.rows, shape.cols, s);
    const int r = 32;
    const TruncatedSvd exact = truncated_svd(A, r, SvdMethod::Exact);
    const TruncatedSvd partial = truncated_svd(A, r, SvdMethod::Partial);
    INFO(shape.rows << "x" << shape.cols);
    REQUIRE(partial.method_used == SvdMethod::Partial);
    const double value_err = ((exact.S - partial.S).array() / exact.S.array()).abs().maxCoeff();
    const double recon_err = (exact.reconstruct() - partial.reconstruct()).norm() / exact.reconstruct().norm();
    const double orth_u = (partial.U.transpose() * partial.U - Eigen::MatrixXd::Identity(r, r)).norm();
    const double orth_v = (partial.V.transpose() * partial.V - Eigen::MatrixXd::Identity(r, r)).norm();
    std::printf("BDCSVD vs Spectra %ldx%ld r=%d: max rel value diff %.2e, rel reconstruction diff %.2e\n",
                long(shape.rows), long(shape.cols), r, value_err, recon_err);
    CHECK(value_err < 1e-4);
    CHECK(recon_err < 1e-4);
    CHECK(orth_u < 1e-8);
    CHECK(orth_v < 1e-8);
  }
}

TEST_CASE("Spectra path stays finite on an exactly low-rank matrix and fallbacks are reported", "[lowrank][svd]") {
  Rng rng(5);
  // Rank 10, asked for 20: the Gram matrix has 10 zero eigenvalues. Spectra's own
  // matrix_U/matrix_V would divide by sqrt(0); the Ritz step does not.
  const Eigen::MatrixXd A = with_spectrum(rng, 120, 90, geometric_spectrum(10, 2.0, 0.8));
  const TruncatedSvd t = truncated_svd(A, 20, SvdMethod::Partial);
  CHECK(t.U.allFinite());
  CHECK(t.V.allFinite());
  CHECK((A - t.reconstruct()).norm() / A.norm() < 1e-8);

  // Full rank is outside Spectra's range: Exact, with a note.
  const TruncatedSvd full = truncated_svd(A, 90, SvdMethod::Partial);
  CHECK(full.method_used == SvdMethod::Exact);
  CHECK(full.note.find("outside Spectra's range") != std::string::npos);

  // Auto's rule.
  CHECK(resolve_svd_method(64, 64, 8, SvdMethod::Auto) == SvdMethod::Exact);
  CHECK(resolve_svd_method(2048, 2048, 128, SvdMethod::Auto) == SvdMethod::Partial);
  CHECK(resolve_svd_method(2048, 2048, 512, SvdMethod::Auto) == SvdMethod::Partial);
  CHECK(resolve_svd_method(2048, 2048, 513, SvdMethod::Auto) == SvdMethod::Exact);
  CHECK(resolve_svd_method(256, 256, 32, SvdMethod::Auto) == SvdMethod::Partial);
  CHECK(resolve_svd_method(200, 200, 10, SvdMethod::Auto) == SvdMethod::Exact);
  CHECK(resolve_svd_method(1024, 4096, 128, SvdMethod::Auto) == SvdMethod::Partial);
  CHECK(resolve_svd_method(100, 100, 100, SvdMethod::Partial) == SvdMethod::Exact);
  CHECK_THROWS_AS(truncated_svd(A, 0, SvdMethod::Exact), Error);
  CHECK_THROWS_AS(truncated_svd(A, 91, SvdMethod::Exact), Error);
}

TEST_CASE("rank rules", "[lowrank]") {
  CHECK(rank_for_divisor(64, 64, 8) == 8);
  CHECK(rank_for_divisor(256, 64, 8) == 8);
  CHECK(rank_for_divisor(4, 4, 8) == 1);
  // r·(out+in) < out·in
  CHECK(max_useful_rank(64, 64) == 31);  // 32·128 = 4096 is not smaller
  CHECK(max_useful_rank(2048, 2048) == 1023);
  CHECK(max_useful_rank(1, 1) == 0);
  Eigen::VectorXd s(4);
  s << 4, 2, 1, 1;  // energies 16, 4, 1, 1 of 22
  CHECK(rank_for_energy(s, 0.5) == 1);
  CHECK(rank_for_energy(s, 16.0 / 22.0) == 1);
  CHECK(rank_for_energy(s, 0.8) == 2);
  CHECK(rank_for_energy(s, 0.95) == 3);
  CHECK(rank_for_energy(s, 1.0) == 4);
}

TEST_CASE("full-rank factors reproduce W both plain and whitened", "[lowrank]") {
  Rng rng(3);
  const Eigen::MatrixXd W = rng.gaussian(40, 24);
  const Eigen::MatrixXd C = anisotropic_second_moment(rng, 24, 2000);
  const Whitening wh = Whitening::from_second_moment(C, kDefaultWhiteningDamping);
  for (const Whitening* w : {static_cast<const Whitening*>(nullptr), &wh}) {
    const LowRankFactors f = factorize(W, 24, SvdMethod::Exact, w);
    CHECK(f.a.rows() == 24);
    CHECK(f.a.cols() == 24);
    CHECK(f.b.rows() == 40);
    CHECK(f.b.cols() == 24);
    const LowRankErrors e = measure_errors(W, f, &C);
    INFO((w ? "whitened" : "plain") << " weight error " << e.weight);
    CHECK(e.weight < 1e-5);  // FP32 factors
    REQUIRE(e.output.has_value());
    CHECK(*e.output < 1e-5);
  }
}

TEST_CASE("activation-aware SVD beats plain SVD on output error for anisotropic inputs", "[lowrank]") {
  Rng rng(21);
  const Eigen::Index out = 64, in = 64;
  const Eigen::MatrixXd W = rng.gaussian(out, in) / 8.0;
  const Eigen::MatrixXd C = anisotropic_second_moment(rng, in, 4096);
  for (int r : {4, 8, 16}) {
    const LowRankFactors plain = factorize(W, r, SvdMethod::Exact, nullptr);
    const Whitening wh = Whitening::from_second_moment(C, kDefaultWhiteningDamping);
    const LowRankFactors aware = factorize(W, r, SvdMethod::Exact, &wh);
    const LowRankErrors ep = measure_errors(W, plain, &C);
    const LowRankErrors ea = measure_errors(W, aware, &C);
    std::printf("anisotropic C, r=%2d: plain  weight %.4f output %.4f | aware weight %.4f output %.4f (%s)\n", r,
                ep.weight, *ep.output, ea.weight, *ea.output, wh.kind().c_str());
    CHECK(*ea.output < 0.8 * *ep.output);  // much better where it is meant to be
    CHECK(ea.weight >= ep.weight);         // and no better on weights (Eckart-Young)
  }
  // Undamped, the whitened truncation is exactly optimal in output error: the error is the
  // discarded energy of W·L.
  const Whitening exact = Whitening::from_second_moment(C, 0.0);
  REQUIRE(exact.kind() == "cholesky");
  const TruncatedSvd svd = truncated_svd(exact.whiten(W), 8, SvdMethod::Exact);
  const LowRankFactors f = factors_from_svd(svd, 8, &exact);
  const double expected = std::sqrt(svd.discarded_energy() / svd.total_energy);
  const double measured = *measure_errors(W, f, &C).output;
  CHECK(std::fabs(measured - expected) / expected < 1e-4);
}

TEST_CASE("activation-aware SVD equals plain SVD when C = I", "[lowrank]") {
  Rng rng(4);
  const Eigen::MatrixXd W = rng.gaussian(48, 32);
  const Eigen::MatrixXd I = Eigen::MatrixXd::Identity(32, 32);
  const Whitening wh = Whitening::from_second_moment(I, kDefaultWhiteningDamping);
  const LowRankFactors plain = factorize(W, 8, SvdMethod::Exact, nullptr);
  const LowRankFactors aware = factorize(W, 8, SvdMethod::Exact, &wh);
  const Eigen::MatrixXd rp = plain.b.cast<double>() * plain.a.cast<double>();
  const Eigen::MatrixXd ra = aware.b.cast<double>() * aware.a.cast<double>();
  CHECK((rp - ra).norm() / rp.norm() < 1e-5);
  const LowRankErrors ep = measure_errors(W, plain, &I), ea = measure_errors(W, aware, &I);
  CHECK(std::fabs(ep.weight - ea.weight) < 1e-6);
  CHECK(std::fabs(*ep.output - *ea.output) < 1e-6);
  CHECK(std::fabs(*ep.output - ep.weight) < 1e-6);  // with C = I both errors are the same thing
}

TEST_CASE("whitening falls back to a clamped eigen-decomposition when Cholesky fails", "[lowrank]") {
  Rng rng(8);
  // 10 samples in 32 dimensions: C has rank 10; undamped Cholesky must fail.
  const Eigen::MatrixXd X = rng.gaussian(10, 32);
  const Eigen::MatrixXd C = X.transpose() * X / 10.0;
  const Whitening wh = Whitening::from_second_moment(C, 0.0);
  CHECK(wh.kind() == "eigen");
  CHECK(wh.clamped_eigenvalues() >= 22);
  const Eigen::MatrixXd W = rng.gaussian(16, 32);
  const LowRankFactors f = factorize(W, 4, SvdMethod::Exact, &wh);
  CHECK(f.a.allFinite());
  CHECK(f.b.allFinite());
  // whiten/unwhiten are inverse to each other.
  CHECK((wh.unwhiten(wh.whiten(W)) - W).norm() / W.norm() < 1e-6);
  // Damped (the default), Cholesky succeeds on the same C.
  CHECK(Whitening::from_second_moment(C, kDefaultWhiteningDamping).kind() == "cholesky");
  CHECK_THROWS_AS(Whitening::from_second_moment(Eigen::MatrixXd::Zero(4, 4), 0.01), InputError);
}

TEST_CASE("budget allocation respects the budget and favours fast-decaying spectra", "[lowrank]") {
  const int64_t n = 64;
  auto item = [&](const Eigen::VectorXd& s) {
    BudgetItem it;
    it.rows = n;
    it.cols = n;
    it.gains = s.array().square() / s.squaredNorm();
    return it;
  };
  Eigen::VectorXd fast = geometric_spectrum(n, 1.0, 0.7);
  Eigen::VectorXd slow(n);
  for (int i = 0; i < n; ++i) slow[i] = 1.0 / std::sqrt(1.0 + i);
  const std::vector<BudgetItem> items = {item(slow), item(fast)};
  const int64_t budget = 2 * (n * n) / 4;  // a quarter of the dense parameters: r = 8 each on average
  const std::vector<RankChoice> c = allocate_budget(items, budget);
  int64_t used = 0;
  double error = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    REQUIRE_FALSE(c[i].keep_dense);
    used += int64_t(c[i].rank) * 2 * n;
    error += items[i].gains.tail(n - c[i].rank).sum();
  }
  const double uniform_error = items[0].gains.tail(n - 8).sum() + items[1].gains.tail(n - 8).sum();
  std::printf("budget %ld: slow spectrum r=%d, fast spectrum r=%d, used %ld; summed relative error %.4f (uniform r=8: %.4f)\n",
              long(budget), c[0].rank, c[1].rank, long(used), error, uniform_error);
  CHECK(used <= budget);
  CHECK(used > budget - 2 * n);  // nothing left that would still fit
  // The fast-decaying matrix reaches a small error with few components, so it is the one
  // compressed harder; the slow one gets the rank.
  CHECK(c[1].rank < c[0].rank);
  CHECK(error < uniform_error);

  // A tiny budget cannot give rank 1 to everyone; a huge one keeps matrices dense.
  CHECK_THROWS_AS(allocate_budget(items, 100), UsageError);
  const std::vector<RankChoice> all = allocate_budget(items, 2 * n * n);
  CHECK(all[0].keep_dense);
}

TEST_CASE("tiny v5.2 att.key matrices: divisor 8 gives r = 8 with measured errors", "[lowrank][model]") {
  const std::string path = tiny_model_path(kTinyV52, "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  const Model model = read_rwkvcpp(path);
  double sum = 0;
  for (int64_t layer = 0; layer < model.dims.n_layer; ++layer) {
    const std::string name = "blocks." + std::to_string(layer) + ".att.key.weight";
    const Tensor& t = model.at(name);
    REQUIRE(t.shape == std::vector<int64_t>{64, 64});
    const int r = rank_for_divisor(t.dim(0), t.dim(1), 8);
    REQUIRE(r == 8);
    const Eigen::MatrixXd W = matrix_of(t);
    const LowRankFactors f = factorize(W, r, SvdMethod::Auto, nullptr);
    const LowRankErrors e = measure_errors(W, f, nullptr);
    // Cross-check against the exact spectrum (Eckart-Young).
    const Eigen::VectorXd s = singular_values(W);
    const double expected = std::sqrt(s.tail(64 - r).squaredNorm() / s.squaredNorm());
    std::printf("%s r=%d relative weight error %.4f (sqrt discarded energy %.4f, s1/s8/s64 = %.3f/%.3f/%.4f)\n",
                name.c_str(), r, e.weight, expected, s[0], s[7], s[63]);
    CHECK(std::fabs(e.weight - expected) < 1e-5);
    CHECK(e.weight > 0.0);
    CHECK(e.weight < 1.0);
    sum += e.weight;
  }
  std::printf("mean relative weight error of att.key at r=8: %.4f\n", sum / double(model.dims.n_layer));
}

TEST_CASE("lowrank pass on the tiny v5.2 model", "[lowrank][model]") {
  const std::string path = tiny_model_path(kTinyV52, "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  const Model dense = read_rwkvcpp(path);
  CompressedModel model = CompressedModel::from_dense(dense);
  const std::vector<std::string> names_before = model.names();

  LowRankPass pass{LowRankOptions{}};  // RWKV-Lite defaults
  CHECK_FALSE(pass.needs_calibration());
  pass.validate(model);
  const std::vector<std::string> targets = pass.selected(model);
  CHECK(targets.size() == size_t(4 * dense.dims.n_layer));  // r, k, v, g of every layer
  for (const auto& t : targets) CHECK(t.find("att.output") == std::string::npos);
  CompressPlan plan{model.shapes_only(), {}, 0, {}};
  pass.plan(plan);
  CHECK(plan.unknowns.empty());

  PassContext ctx{model, nullptr, 0, 1, {}, {}};
  ctx.threads = 2;
  int streamed = 0;
  ctx.on_row = [&](const PassReportRow&) { ++streamed; };
  const std::vector<PassReportRow> rows = pass.run(ctx);
  REQUIRE(rows.size() == targets.size());
  CHECK(streamed == int(rows.size()));
  for (const auto& row : rows) {
    CHECK(row.action == "lowrank r=8");
    CHECK(row.bytes_before == 4 * 64 * 64);
    CHECK(row.bytes_after == 4 * 8 * (64 + 64));
    CHECK(row.extra["rank"] == 8);
    CHECK(row.extra["output_error"].is_null());  // no calibration
    CHECK(row.metric == "rel_err");
    REQUIRE(row.value);
    CHECK(*row.value > 0);
    CHECK(*row.value < 1);
    CHECK(row.shape == std::vector<int64_t>{64, 64});
  }
  // The plan has the run's tensors: names, order and shapes.
  REQUIRE(plan.model.names() == model.names());
  for (const auto& t : model.tensors()) CHECK(plan.model.at(t.name).values.shape == t.values.shape);

  // Shapes, placement where the weight was, and the product equal to the rank-8 SVD of W.
  for (const auto& name : targets) {
    const std::string base = name.substr(0, name.size() - 7);
    CHECK_FALSE(model.has(name));
    REQUIRE(model.has(base + ".lr_a"));
    REQUIRE(model.has(base + ".lr_b"));
    const StoredTensor& a = model.at(base + ".lr_a");
    const StoredTensor& b = model.at(base + ".lr_b");
    CHECK(a.values.shape == std::vector<int64_t>{8, 64});
    CHECK(b.values.shape == std::vector<int64_t>{64, 8});
    CHECK(a.encoding == "f32");
    CHECK(b.encoding == "f32");
    const Eigen::MatrixXd W = matrix_of(dense.at(name));
    const Eigen::MatrixXd product = matrix_of(b.values) * matrix_of(a.values);
    const TruncatedSvd svd = truncated_svd(W, 8, SvdMethod::Exact);
    CHECK((product - svd.reconstruct()).norm() / W.norm() < 1e-5);
  }
  const std::vector<std::string> names_after = model.names();
  // The factors sit where the weight was: the order is the old one with every target
  // "<base>.weight" replaced by "<base>.lr_a", "<base>.lr_b".
  std::vector<std::string> expected_order;
  for (const auto& n : names_before) {
    if (std::find(targets.begin(), targets.end(), n) == targets.end()) {
      expected_order.push_back(n);
    } else {
      expected_order.push_back(n.substr(0, n.size() - 7) + ".lr_a");
      expected_order.push_back(n.substr(0, n.size() - 7) + ".lr_b");
    }
  }
  CHECK(names_after == expected_order);
  CHECK(names_after.size() == names_before.size() + targets.size());
}

TEST_CASE("lowrank pass is deterministic across thread counts and keeps dense when factors would not save", "[lowrank][model]") {
  const std::string path = tiny_model_path(kTinyV52, "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  const Model dense = read_rwkvcpp(path);
  LowRankOptions o;
  o.rule = RankRule::Energy;
  o.energy = 0.9;
  std::vector<std::vector<float>> results[2];
  for (int threads : {1, 2}) {
    CompressedModel model = CompressedModel::from_dense(dense);
    LowRankPass pass(o);
    PassContext ctx{model, nullptr, 0, 1, {}, {}};
    ctx.threads = threads;
    pass.run(ctx);
    for (const auto& t : model.tensors()) results[threads - 1].push_back(t.values.data);
  }
  CHECK(results[0] == results[1]);  // bit-identical

  LowRankOptions fixed;
  fixed.rule = RankRule::Fixed;
  fixed.rank = 32;  // 32·(64+64) = 4096 = 64·64: no saving
  fixed.targets = {"blocks.0.att.key.weight"};
  CompressedModel model = CompressedModel::from_dense(dense);
  LowRankPass pass(fixed);
  CompressPlan plan{model.shapes_only(), {}, 0, {}};
  pass.plan(plan);
  CHECK(plan.model.names() == model.names());  // kept dense
  PassContext ctx{model, nullptr, 0, 1, {}, {}};
  const auto rows = pass.run(ctx);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].action == "keep dense");
  CHECK(rows[0].bytes_after == rows[0].bytes_before);
  CHECK(rows[0].extra["note"].get<std::string>().find("would not save") != std::string::npos);
  CHECK(model.has("blocks.0.att.key.weight"));
  CHECK_FALSE(model.has("blocks.0.att.key.lr_a"));
}

TEST_CASE("lowrank pass validation", "[lowrank][model]") {
  const std::string path = tiny_model_path(kTinyV52, "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  const CompressedModel model = CompressedModel::from_dense(read_rwkvcpp(path));
  LowRankOptions none;
  none.targets = {"blocks.*.att.nothing.weight"};
  CHECK_THROWS_WITH(LowRankPass(none).validate(model), Catch::Contains("no tensor of this model matches"));
  LowRankOptions vec;
  vec.targets = {"blocks.0.ln1.weight"};
  CHECK_THROWS_WITH(LowRankPass(vec).validate(model), Catch::Contains("needs a 2-D matrix"));
  LowRankOptions not_weight;
  not_weight.targets = {"blocks.0.att.time_decay"};
  CHECK_THROWS_WITH(LowRankPass(not_weight).validate(model), Catch::Contains("'<base>.weight'"));
  LowRankOptions tight;
  tight.rule = RankRule::Budget;
  tight.budget = 0.001;
  CHECK_THROWS_AS(LowRankPass(tight).validate(model), UsageError);
  LowRankOptions bad;
  bad.targets = {"blocks.[0].att.key.weight"};
  CHECK_THROWS_AS(LowRankPass(bad), UsageError);
}

TEST_CASE("lowrank pass: budget and activation-aware modes on the tiny v5.2 model", "[lowrank][model]") {
  const std::string path = tiny_model_path(kTinyV52, "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  const Model dense = read_rwkvcpp(path);

  // Synthetic calibration: an anisotropic C per target input.
  CalibrationData calib;
  Rng rng(99);
  LowRankPass probe{LowRankOptions{}};
  const CompressedModel probe_model = CompressedModel::from_dense(dense);
  for (const auto& name : probe.selected(probe_model)) {
    calib.input_second_moment[name] = anisotropic_second_moment(rng, 64, 1024);
  }

  auto run = [&](LowRankOptions o, const CalibrationData* c) {
    CompressedModel model = CompressedModel::from_dense(dense);
    LowRankPass pass(o);
    PassContext ctx{model, nullptr, 0, 1, {}, {}};
    ctx.calibration = c;
    return pass.run(ctx);
  };
  LowRankOptions plain;
  LowRankOptions aware;
  aware.activation_aware = true;
  const auto rows_plain = run(plain, &calib);  // plain, but C present: output error measured too
  const auto rows_aware = run(aware, &calib);
  REQUIRE(rows_plain.size() == rows_aware.size());
  double out_plain = 0, out_aware = 0, w_plain = 0, w_aware = 0;
  for (size_t i = 0; i < rows_plain.size(); ++i) {
    out_plain += rows_plain[i].extra["output_error"].get<double>();
    out_aware += rows_aware[i].extra["output_error"].get<double>();
    w_plain += rows_plain[i].extra["weight_error"].get<double>();
    w_aware += rows_aware[i].extra["weight_error"].get<double>();
    CHECK(rows_aware[i].extra["whitening"] == "cholesky");
  }
  const double n = double(rows_plain.size());
  std::printf("tiny v5.2, r=8, synthetic anisotropic C: mean output error plain %.4f aware %.4f; "
              "mean weight error plain %.4f aware %.4f\n",
              out_plain / n, out_aware / n, w_plain / n, w_aware / n);
  CHECK(out_aware < out_plain);
  CHECK(LowRankPass(aware).needs_calibration());

  // Budget: a quarter of the targets' parameters, spent where it reduces error most.
  LowRankOptions budget;
  budget.rule = RankRule::Budget;
  budget.budget = 0.25;
  const auto rows_budget = run(budget, nullptr);
  int64_t after = 0, before = 0;
  int min_rank = 1 << 30, max_rank = 0;
  for (const auto& row : rows_budget) {
    after += row.bytes_after / 4;
    before += row.bytes_before / 4;
    if (!row.extra["rank"].is_null()) {
      min_rank = std::min(min_rank, row.extra["rank"].get<int>());
      max_rank = std::max(max_rank, row.extra["rank"].get<int>());
    }
  }
  std::printf("budget 0.25: %ld of %ld parameters, ranks %d..%d\n", long(after), long(before), min_rank, max_rank);
  CHECK(after <= before / 4);
  CHECK(min_rank < max_rank);  // not a uniform split
}

// Hidden ([.]): run with `test_lowrank "[timing]"`. Times the two back ends, including the
// points around Auto's rule (n >= 256, r <= n/4) and the brief's 1024²/2048² at rank 128.
TEST_CASE("timing: BDCSVD vs Spectra", "[.][timing]") {
  Rng rng(1);
  struct Point {
    Eigen::Index n;
    int rank;
  };
  for (Point p : {Point{256, 32}, Point{512, 64}, Point{1024, 128}, Point{1024, 256}, Point{2048, 128}, Point{2048, 512}}) {
    const Eigen::Index n = p.n;
    Eigen::VectorXd s(n);
    for (Eigen::Index i = 0; i < n; ++i) s[i] = 1.0 / std::sqrt(1.0 + double(i));
    const Eigen::MatrixXd decaying = with_spectrum(rng, n, n, s);
    const Eigen::MatrixXd gaussian = rng.gaussian(n, n);
    for (const auto* kind : {"decaying", "gaussian"}) {
      const Eigen::MatrixXd& A = std::string(kind) == "decaying" ? decaying : gaussian;
      double seconds[2];
      TruncatedSvd results[2];
      int k = 0;
      for (SvdMethod m : {SvdMethod::Exact, SvdMethod::Partial}) {
        const auto t0 = std::chrono::steady_clock::now();
        results[k] = truncated_svd(A, p.rank, m);
        seconds[k++] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      const double diff = ((results[0].S - results[1].S).array() / results[0].S.array()).abs().maxCoeff();
      std::printf("%5ldx%-5ld %-8s r=%-4d BDCSVD %6.2f s  Spectra %6.2f s  (auto: %s)  max rel value diff %.1e\n",
                  long(n), long(n), kind, p.rank, seconds[0], seconds[1],
                  svd_method_name(resolve_svd_method(n, n, p.rank, SvdMethod::Auto)), diff);
      CHECK(diff < 1e-4);
    }
  }
}

TEST_CASE("lowrank plan: the energy and budget rules say their ranks are not known before the SVDs", "[lowrank]") {
  const std::string path = tiny_model_path(kTinyV52, "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  const CompressedModel model = CompressedModel::from_dense(read_rwkvcpp(path));
  for (RankRule rule : {RankRule::Energy, RankRule::Budget}) {
    LowRankOptions o;
    o.rule = rule;
    o.energy = 0.9;
    o.budget = 0.5;
    LowRankPass pass(o);
    CompressPlan plan{model.shapes_only(), {}, 0, {}};
    pass.plan(plan);
    REQUIRE(plan.unknowns.size() == 1);
    CHECK(plan.unknowns[0].find(rank_rule_key(rule)) != std::string::npos);
    CHECK(plan.model.has("blocks.0.att.key.lr_a"));  // later passes still see the factor names
  }
}
