#include "pipeline/calibration.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "core/error.h"
#include "engine/build_weights.h"
#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

namespace rwkvlite {
namespace {

// Wraps a projection: accumulates sum x xᵀ (double) of every input, then applies the original.
class RecordingProjection final : public Projection {
 public:
  RecordingProjection(std::unique_ptr<Projection> inner, Eigen::MatrixXd* sum, int64_t* count)
      : inner_(std::move(inner)), sum_(sum), count_(count) {}
  int64_t rows() const override { return inner_->rows(); }
  int64_t cols() const override { return inner_->cols(); }
  void apply(const float* x, float* y, ThreadPool& pool) const override {
    record(x, 1);
    inner_->apply(x, y, pool);
  }
  void apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const override {
    record(x, n);
    inner_->apply_batch(x, n, y, pool);
  }
  int64_t storage_bytes() const override { return inner_->storage_bytes(); }

 private:
  void record(const float* x, int64_t n) const {
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> X(x, n, cols());
    const Eigen::MatrixXd Xd = X.cast<double>();
    sum_->selfadjointView<Eigen::Lower>().rankUpdate(Xd.transpose());
    *count_ += n;
  }
  std::unique_ptr<Projection> inner_;
  Eigen::MatrixXd* sum_;
  int64_t* count_;
};

}  // namespace

CalibrationData run_calibration(const Model& model, const CalibrationRequest& request) {
  const auto t0 = std::chrono::steady_clock::now();
  CalibrationData data;
  std::map<std::string, int64_t> counts;
  EngineWeights weights = build_dense_weights(model);
  std::set<std::string> found;
  for_each_projection(weights, [&](const std::string& name, std::unique_ptr<Projection>& slot) {
    if (!request.projections.count(name)) return;
    const int64_t d = slot->cols();
    auto& sum = data.input_second_moment[name];
    sum = Eigen::MatrixXd::Zero(d, d);
    slot = std::make_unique<RecordingProjection>(std::move(slot), &sum, &counts[name]);
    found.insert(name);
  });
  for (const auto& name : request.projections) {
    if (!found.count(name)) throw UsageError("calibration: the model has no projection named '" + name + "'");
  }
  EngineOptions options;
  options.threads = request.threads;
  Engine engine(std::move(weights), options);
  const auto tokenizer = tokenizer_for(model.dims.n_vocab, "");
  const std::vector<int32_t> tokens = tokenizer->encode(request.text);
  if (tokens.empty()) throw InputError("the calibration text is empty");
  State state = engine.new_state();
  // Sequence mode: projections see blocks of tokens (apply_batch), in token order.
  engine.eval_sequence(tokens.data(), tokens.size(), state, nullptr);
  data.tokens = static_cast<int64_t>(tokens.size());
  for (auto& [name, m] : data.input_second_moment) {
    m.triangularView<Eigen::StrictlyUpper>() = m.transpose();  // rankUpdate filled the lower half
    m /= static_cast<double>(std::max<int64_t>(1, counts[name]));
  }
  spdlog::info("calibration: {} tokens, {} projections recorded in {:.2f} s", data.tokens, found.size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return data;
}

}  // namespace rwkvlite
