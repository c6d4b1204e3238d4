// The compressor's product kernels (compress/pipeline/dense_products.h) and calibration built
// on them (compress/pipeline/calibration.cpp):
//  - both kernels agree with a double-precision reference within the FP32 error bound of their
//    sums, and are bit-identical across ISA paths (AVX-512, AVX2, scalar), thread counts and
//    batch splits;
//  - calibration's statistics agree, to FP32 rounding, with the previous implementation (the
//    runtime's dense engine, whose projections were wrapped to add x xᵀ with Eigen's double
//    rankUpdate), reimplemented here as the reference, on a real model.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "converters/model_io.h"
#include "runtime/engine/build_weights.h"
#include "runtime/engine/engine.h"
#include "runtime/format/layout.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/eval/text_source.h"
#include "compress/pipeline/calibration.h"
#include "compress/pipeline/dense_products.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

const ProductIsa kPaths[] = {ProductIsa::Avx512, ProductIsa::Avx2, ProductIsa::Scalar};

}  // namespace

TEST_CASE("multiply_rows_by_transpose: FP32-accurate and bit-identical over paths, threads and batches",
          "[dense_products]") {
  ThreadPool one(1, 1), two(2, 1);
  struct Shape {
    int64_t n, rows, cols;
  };
  for (const Shape s : {Shape{1, 1, 1}, Shape{5, 7, 3}, Shape{33, 13, 17}, Shape{100, 261, 256}, Shape{70, 24, 768}}) {
    CAPTURE(s.n, s.rows, s.cols);
    const std::vector<float> X = random_values(static_cast<size_t>(s.n * s.cols), 1);
    const std::vector<float> W = random_values(static_cast<size_t>(s.rows * s.cols), 2);
    std::vector<float> reference;
    for (const ProductIsa isa : kPaths) {
      CAPTURE(product_isa_name(isa));
      for (ThreadPool* pool : {&one, &two}) {
        std::vector<float> Y(static_cast<size_t>(s.n * s.rows), -1.0f);
        multiply_rows_by_transpose(X.data(), s.n, W.data(), s.rows, s.cols, Y.data(), s.rows, *pool, isa);
        if (reference.empty()) {
          reference = Y;
          for (int64_t t = 0; t < s.n; ++t) {
            for (int64_t r = 0; r < s.rows; ++r) {
              double exact = 0, magnitude = 0;
              for (int64_t k = 0; k < s.cols; ++k) {
                const double p = double(W[r * s.cols + k]) * X[t * s.cols + k];
                exact += p;
                magnitude += std::fabs(p);
              }
              // A sum of `cols` rounded terms: |error| <= cols * eps * sum |terms|.
              REQUIRE(std::fabs(Y[t * s.rows + r] - exact) <= double(s.cols) * 6e-8 * magnitude + 1e-30);
            }
          }
        }
        REQUIRE(Y == reference);
      }
    }
    // One input at a time gives the same bits as the whole batch.
    std::vector<float> y(static_cast<size_t>(s.rows));
    for (int64_t t = 0; t < s.n; ++t) {
      multiply_rows_by_transpose(X.data() + t * s.cols, 1, W.data(), s.rows, s.cols, y.data(), s.rows, two);
      REQUIRE(std::equal(y.begin(), y.end(), reference.begin() + t * s.rows));
    }
  }
}

TEST_CASE("accumulate_second_moment: FP32-accurate and bit-identical over paths and threads", "[dense_products]") {
  ThreadPool one(1, 1), two(2, 1);
  struct Shape {
    int64_t n, d;
  };
  for (const Shape s : {Shape{1, 1}, Shape{3, 5}, Shape{300, 37}, Shape{1100, 256}, Shape{600, 100}}) {
    CAPTURE(s.n, s.d);
    const std::vector<float> X = random_values(static_cast<size_t>(s.n * s.d), 3);
    std::vector<double> reference;
    for (const ProductIsa isa : kPaths) {
      CAPTURE(product_isa_name(isa));
      for (ThreadPool* pool : {&one, &two}) {
        std::vector<double> S(static_cast<size_t>(s.d * s.d), 0.5);
        accumulate_second_moment(X.data(), s.n, s.d, S.data(), *pool, isa);
        if (reference.empty()) {
          reference = S;
          for (int64_t i = 0; i < s.d; ++i) {
            for (int64_t j = 0; j <= i; ++j) {
              double exact = 0.5, magnitude = 0;
              for (int64_t t = 0; t < s.n; ++t) {
                const double p = double(X[t * s.d + i]) * X[t * s.d + j];
                exact += p;
                magnitude += std::fabs(p);
              }
              // FP32 sums of at most kSecondMomentRun terms, added in double.
              REQUIRE(std::fabs(S[i * s.d + j] - exact) <= double(kSecondMomentRun) * 6e-8 * magnitude + 1e-12);
            }
          }
        }
        for (int64_t i = 0; i < s.d; ++i) {
          for (int64_t j = 0; j <= i; ++j) REQUIRE(S[i * s.d + j] == reference[i * s.d + j]);
        }
      }
    }
  }
}

namespace {

// The previous calibration's second moments: the runtime's dense engine (default block size),
// every calibrated projection wrapped to add x xᵀ in double with Eigen's rankUpdate.
class RankUpdateRecorder final : public Projection {
 public:
  RankUpdateRecorder(std::unique_ptr<Projection> inner, Eigen::MatrixXd* sum, int64_t* count)
      : inner_(std::move(inner)), sum_(sum), count_(count) {}
  int64_t rows() const override { return inner_->rows(); }
  int64_t cols() const override { return inner_->cols(); }
  void apply(const float* x, float* y, ThreadPool& pool) const override { apply_batch(x, 1, y, pool); }
  void apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const override {
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> X(x, n, cols());
    const Eigen::MatrixXd Xd = X.cast<double>();
    sum_->selfadjointView<Eigen::Lower>().rankUpdate(Xd.transpose());
    *count_ += n;
    inner_->apply_batch(x, n, y, pool);
  }
  int64_t storage_bytes() const override { return inner_->storage_bytes(); }

 private:
  std::unique_ptr<Projection> inner_;
  Eigen::MatrixXd* sum_;
  int64_t* count_;
};

std::map<std::string, Eigen::MatrixXd> rank_update_moments(const Model& model, const std::string& text) {
  std::map<std::string, Eigen::MatrixXd> sums;
  std::map<std::string, int64_t> counts;
  EngineWeights weights = build_dense_weights(model);
  for_each_projection(weights, [&](const std::string& name, std::unique_ptr<Projection>& slot) {
    if (!layout::is_calibrated_projection(name)) return;
    auto& sum = sums[name];
    sum = Eigen::MatrixXd::Zero(slot->cols(), slot->cols());
    slot = std::make_unique<RankUpdateRecorder>(std::move(slot), &sum, &counts[name]);
  });
  EngineOptions options;
  Engine engine(std::move(weights), options);
  const std::vector<int32_t> tokens = tokenizer_for(model.dims.n_vocab, "")->encode(text);
  State state = engine.new_state();
  engine.eval_sequence(tokens.data(), tokens.size(), state, nullptr);
  for (auto& [name, m] : sums) {
    m.triangularView<Eigen::StrictlyUpper>() = m.transpose();
    m /= static_cast<double>(counts[name]);
  }
  return sums;
}

}  // namespace

TEST_CASE("calibration statistics agree with the rankUpdate implementation to FP32 rounding", "[dense_products]") {
  const Model model = load_model(tiny_model_path("5v2-730K", "FP32"));
  const std::string text = read_text_range(bundled_text_path(), 0, 6000);
  CalibrationRequest req;
  req.text = text;
  req.max_samples = 1000;
  for (const auto& [name, t] : model.tensors) {
    if (layout::is_calibrated_projection(name)) req.projections.insert(name);
  }
  req.threads = 2;
  const CalibrationData data = run_calibration(model, req);
  const std::map<std::string, Eigen::MatrixXd> reference = rank_update_moments(model, text);
  REQUIRE(data.input_second_moment.size() == reference.size());
  double worst = 0;
  for (const auto& [name, ref] : reference) {
    CAPTURE(name);
    const Eigen::MatrixXd& m = data.input_second_moment.at(name);
    REQUIRE(m == m.transpose());
    // Elementwise, relative to the scale of the entry's row and column.
    const Eigen::VectorXd scale = ref.diagonal().cwiseSqrt();
    const Eigen::MatrixXd rel = (m - ref).cwiseAbs().cwiseQuotient(scale * scale.transpose());
    worst = std::max(worst, rel.maxCoeff());
  }
  INFO("worst relative difference " << worst);
  // Hidden states differ by FP32 rounding (one FMA chain per output instead of eight partial
  // sums) and the moments add FP32 runs; observed 6e-7 on this model.
  REQUIRE(worst < 1e-5);

  // Bit-identical for 1 and 2 threads.
  req.threads = 1;
  const CalibrationData single = run_calibration(model, req);
  for (const auto& [name, m] : data.input_second_moment) REQUIRE(single.input_second_moment.at(name) == m);
  for (size_t l = 0; l < data.ffn_key_inputs.size(); ++l) REQUIRE(single.ffn_key_inputs[l] == data.ffn_key_inputs[l]);
  REQUIRE(single.head_inputs == data.head_inputs);
  REQUIRE(single.ffn_active_fraction == data.ffn_active_fraction);
}
