#include "compress/passes/sparsity_predictor_pass.h"

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include "runtime/core/error.h"
#include "runtime/engine/thread_pool.h"
#include "runtime/format/encoding.h"
#include "compress/passes/channel_mix_tensors.h"
#include "runtime/format/layout.h"
#include "compress/algo/predictor_training.h"
#include "compress/pipeline/dense_products.h"
#include "compress/pipeline/ordered_rows.h"

namespace rwkvlite {
namespace {

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajorF>;

const char* const kNoTrainer = "this rwkvlite was built without LibTorch; sparsity_predictor needs it";

// Independent, well-mixed seeds per layer from one pipeline seed (SplitMix64 finaliser).
uint64_t layer_seed(uint64_t seed, int64_t layer) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(layer + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int sign_top_k_for(double fraction, int64_t F) {
  return static_cast<int>(std::clamp<int64_t>(std::llround(fraction * static_cast<double>(F)), 0, F));
}

// The b1 codec's row scale (docs/compact-format.md §2): mean |w| summed in double in column
// order, rounded to float; with the sign bits it is what the runtime's s_j is computed from.
RowMajorF sign_key(const ConstMap& key, Eigen::VectorXf& scale) {
  RowMajorF signs(key.rows(), key.cols());
  scale.resize(key.rows());
  for (Eigen::Index j = 0; j < key.rows(); ++j) {
    double sum = 0;
    for (Eigen::Index d = 0; d < key.cols(); ++d) {
      sum += std::fabs(static_cast<double>(key(j, d)));
      signs(j, d) = key(j, d) < 0 ? -1.0f : 1.0f;
    }
    scale[j] = static_cast<float>(sum / static_cast<double>(key.cols()));
  }
  return signs;
}

// The neurons the sign rule selects for one sample: the k largest s_j, ties to the lower j.
void top_k(const float* s, int64_t F, int k, std::vector<int32_t>& order, std::vector<uint8_t>& selected) {
  std::fill(selected.begin(), selected.end(), uint8_t{0});
  if (k <= 0) return;
  order.resize(static_cast<size_t>(F));
  std::iota(order.begin(), order.end(), 0);
  auto before = [&](int32_t a, int32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); };
  std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), before);
  for (int i = 0; i < k; ++i) selected[static_cast<size_t>(order[static_cast<size_t>(i)])] = 1;
}

struct HeldOutResult {
  float threshold = 0;
  PredictorQuality quality;
};

// Chooses the largest MLP threshold whose union with the sign rule reaches `target_recall` on
// the held-out samples, and measures the result. `scores` and `sign_scores` are Nh x F,
// `labels` points at the held-out rows of the N x F labels.
HeldOutResult tune_threshold(const RowMajorF& scores, const RowMajorF& sign_scores, const uint8_t* labels, int k,
                             double target_recall) {
  const int64_t Nh = scores.rows(), F = scores.cols();
  std::vector<int32_t> order;
  std::vector<uint8_t> by_sign(static_cast<size_t>(F));
  std::vector<float> missed_by_sign;  // MLP scores of active neurons the sign rule does not select
  int64_t active = 0, found_by_sign = 0;
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t n = 0; n < Nh; ++n) {
    top_k(sign_scores.row(n).data(), F, k, order, by_sign);
    for (int64_t j = 0; j < F; ++j) {
      max_score = std::max(max_score, scores(n, j));
      if (!labels[n * F + j]) continue;
      ++active;
      if (by_sign[static_cast<size_t>(j)]) {
        ++found_by_sign;
      } else {
        missed_by_sign.push_back(scores(n, j));
      }
    }
  }
  HeldOutResult out;
  // Active pairs the MLP must find on top of the sign rule's.
  const auto required = static_cast<int64_t>(std::ceil(target_recall * static_cast<double>(active) - 1e-9));
  const int64_t from_mlp = required - found_by_sign;
  if (from_mlp <= 0) {
    // The sign rule alone meets the target; at the largest score the MLP selects nothing here.
    out.threshold = std::isfinite(max_score) ? max_score : 0.0f;
  } else {
    std::sort(missed_by_sign.begin(), missed_by_sign.end(), std::greater<float>());
    const float kth = missed_by_sign[static_cast<size_t>(from_mlp - 1)];
    out.threshold = std::nextafter(kth, -std::numeric_limits<float>::infinity());
  }

  int64_t predicted = 0, hits = 0;
  for (int64_t n = 0; n < Nh; ++n) {
    top_k(sign_scores.row(n).data(), F, k, order, by_sign);
    for (int64_t j = 0; j < F; ++j) {
      const bool p = by_sign[static_cast<size_t>(j)] || scores(n, j) > out.threshold;
      predicted += p;
      hits += p && labels[n * F + j];
    }
  }
  PredictorQuality& q = out.quality;
  q.recall = active ? static_cast<double>(hits) / static_cast<double>(active) : 1.0;
  q.precision = predicted ? static_cast<double>(hits) / static_cast<double>(predicted) : 1.0;
  q.predicted_active_fraction = static_cast<double>(predicted) / static_cast<double>(std::max<int64_t>(1, Nh * F));
  q.sign_only_recall = active ? static_cast<double>(found_by_sign) / static_cast<double>(active) : 1.0;
  return out;
}

}  // namespace

// ---- Options ------------------------------------------------------------------------------

SparsityPredictorOptions SparsityPredictorOptions::read(OptionReader& r) {
  SparsityPredictorOptions o;
  o.rank = static_cast<int>(r.get_int("rank", o.rank, 1, 65536));
  o.epochs = static_cast<int>(r.get_int("epochs", o.epochs, 1, 100000));
  o.batch_size = static_cast<int>(r.get_int("batch_size", o.batch_size, 1, 1 << 20));
  o.learning_rate = r.get_double("learning_rate", o.learning_rate, 0.0, 1.0);
  if (!(o.learning_rate > 0)) r.fail("learning_rate", "'learning_rate' in " + r.where() + " must be > 0");
  o.holdout_fraction = r.get_double("holdout_fraction", o.holdout_fraction, 0.0, 0.9);
  if (!(o.holdout_fraction > 0)) {
    r.fail("holdout_fraction", "'holdout_fraction' in " + r.where() + " must be in (0, 0.9]: the threshold is tuned on it");
  }
  o.target_recall = r.get_double("target_recall", o.target_recall, 0.0, 1.0);
  if (!(o.target_recall > 0)) r.fail("target_recall", "'target_recall' in " + r.where() + " must be in (0, 1]");
  o.sign_top_fraction = r.get_double("sign_top_fraction", o.sign_top_fraction, 0.0, 1.0);
  o.neuron_cache_fraction = r.get_double("neuron_cache_fraction", o.neuron_cache_fraction, 0.0, 1.0);
  o.ignore = r.get_patterns("ignore", o.ignore);
  return o;
}

void SparsityPredictorOptions::check() const {
  if (rank < 1) throw UsageError("sparsity_predictor: 'rank' must be >= 1");
  if (epochs < 1) throw UsageError("sparsity_predictor: 'epochs' must be >= 1");
  if (batch_size < 1) throw UsageError("sparsity_predictor: 'batch_size' must be >= 1");
  if (!(learning_rate > 0 && learning_rate <= 1)) throw UsageError("sparsity_predictor: 'learning_rate' must be in (0, 1]");
  if (!(holdout_fraction > 0 && holdout_fraction <= 0.9)) {
    throw UsageError("sparsity_predictor: 'holdout_fraction' must be in (0, 0.9]");
  }
  if (!(target_recall > 0 && target_recall <= 1)) throw UsageError("sparsity_predictor: 'target_recall' must be in (0, 1]");
  if (!(sign_top_fraction >= 0 && sign_top_fraction <= 1)) {
    throw UsageError("sparsity_predictor: 'sign_top_fraction' must be in [0, 1]");
  }
  if (!(neuron_cache_fraction >= 0 && neuron_cache_fraction <= 1)) {
    throw UsageError("sparsity_predictor: 'neuron_cache_fraction' must be in [0, 1]");
  }
  (void)TensorSelector(ignore, {});
}

// ---- Pass ---------------------------------------------------------------------------------

SparsityPredictorPass::SparsityPredictorPass(SparsityPredictorOptions options) : options_(std::move(options)) {
  options_.check();
  ignore_ = TensorSelector(options_.ignore, {});
}

std::vector<int64_t> SparsityPredictorPass::selected_layers(const CompressedModel& model) const {
  std::vector<int64_t> layers;
  for (int64_t l = 0; l < model.dims.n_layer; ++l) {
    if (!ignore_.matches(layout::ffn_key_weight(l))) layers.push_back(l);
  }
  return layers;
}

void SparsityPredictorPass::validate(const CompressedModel& model) const {
  if (registered_predictor_trainer() == nullptr) throw UsageError(kNoTrainer);
  const std::vector<int64_t> layers = selected_layers(model);
  if (layers.empty()) throw UsageError("sparsity_predictor: 'ignore' excludes every layer of this model");
  for (int64_t l : layers) {
    const Tensor& key = dense_ffn_matrix(model, l, "key", "sparsity_predictor").values;
    if (key.dim(1) != model.dims.n_embd) {
      throw UsageError("sparsity_predictor: '" + layout::ffn_key_weight(l) + "' has shape " +
                       shape_to_string(key.shape) + "; expected [F, " + std::to_string(model.dims.n_embd) + "]");
    }
  }
}

namespace {

// Puts layer l's predictor tensors after the layer's other channel-mix tensors: the 1-bit key
// copy (when there is one: sign_top_fraction = 0 leaves it out of the file), down, up. The
// tensors hold values in a run, only shapes in a plan.
void put_predictor_tensors(CompressedModel& model, int64_t l, Tensor down, Tensor up, std::optional<Tensor> key_sign) {
  const std::string prefix = layout::ffn_prefix(l);
  std::string last;
  for (const StoredTensor& t : model.tensors()) {
    if (t.name.rfind(prefix, 0) == 0) last = t.name;
  }
  StoredTensor down_t{layout::ffn_predictor_down(l), std::move(down), "f32", false, {}};
  StoredTensor up_t{layout::ffn_predictor_up(l), std::move(up), "f32", false, {}};
  if (key_sign) {
    StoredTensor sign;
    sign.name = layout::ffn_key_sign(l);
    sign.values = std::move(*key_sign);
    sign.encoding = "b1";
    const std::string sign_name = sign.name;
    model.put(std::move(sign), last);
    last = sign_name;
  }
  model.put(std::move(down_t), last);
  model.put(std::move(up_t), layout::ffn_predictor_down(l));
}

// Bytes of one layer's predictor tensors (F x D key, rank r, with or without the 1-bit copy).
int64_t predictor_bytes(int64_t F, int64_t D, int rank, bool with_sign) {
  return format::encoded_tensor_bytes("f32", rank, D) + format::encoded_tensor_bytes("f32", F, rank) +
         (with_sign ? format::encoded_tensor_bytes("b1", F, D) : 0);
}

}  // namespace

void SparsityPredictorPass::plan(CompressPlan& plan) const {
  layout::SparseFfnMeta sparse_ffn;
  sparse_ffn.neuron_cache_fraction = options_.neuron_cache_fraction;
  for (int64_t l : selected_layers(plan.model)) {
    const Tensor& key = plan.model.at(layout::ffn_key_weight(l)).values;
    const int64_t F = key.dim(0), D = key.dim(1);
    const int k = sign_top_k_for(options_.sign_top_fraction, F);
    std::optional<Tensor> sign;
    const auto shape = &CompressedModel::shape_only;
    if (k > 0) sign = shape(key.shape);
    put_predictor_tensors(plan.model, l, shape({options_.rank, D}), shape({F, options_.rank}), std::move(sign));
    // The threshold is measured on held-out samples: a placeholder here.
    sparse_ffn.layers.push_back({l, 0.0, k});
    plan.header_slack_bytes += kMaxJsonNumberChars - 1;
  }
  plan.model.file_metadata[layout::SparseFfnMeta::kKey] = sparse_ffn.to_json();
}

void SparsityPredictorPass::check_calibration(const CompressedModel& model, const CalibrationData* calibration) const {
  if (calibration == nullptr || calibration->ffn_key_inputs.size() != static_cast<size_t>(model.dims.n_layer) ||
      calibration->ffn_active_fraction.size() != static_cast<size_t>(model.dims.n_layer)) {
    throw Error("sparsity_predictor: the pipeline provided no channel-mix calibration samples", kExitInternal);
  }
  const int64_t N = calibration->ffn_key_inputs[0].rows();
  const auto held_out = static_cast<int64_t>(std::llround(options_.holdout_fraction * static_cast<double>(N)));
  if (held_out < 1 || N - held_out < 1) {
    throw UsageError("sparsity_predictor: calibration kept " + std::to_string(N) +
                     " sampled tokens, too few to hold out " + std::to_string(options_.holdout_fraction) +
                     " of them; raise [calibration] bytes or samples");
  }
}

// Stage 1. The training jobs; each one's labels, the truth active_j = key_j · x_k > 0 for every
// sample from the FP32 key, are made when the trainer starts it.
std::vector<PredictorTrainingJob> SparsityPredictorPass::training_jobs(const PassContext& ctx,
                                                                       const std::vector<int64_t>& layers,
                                                                       int64_t train_rows) const {
  const CompressedModel& model = ctx.model;
  const int64_t N = ctx.calibration->ffn_key_inputs[0].rows();
  std::vector<PredictorTrainingJob> jobs(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const int64_t l = layers[i];
    const Tensor& key_t = model.at(layout::ffn_key_weight(l)).values;
    const CalibrationData::Rows& X = ctx.calibration->ffn_key_inputs[static_cast<size_t>(l)];
    if (X.rows() != N || X.cols() != key_t.dim(1)) {
      throw Error("sparsity_predictor: calibration samples of layer " + std::to_string(l) + " are " +
                      std::to_string(X.rows()) + "x" + std::to_string(X.cols()) + ", expected " + std::to_string(N) +
                      "x" + std::to_string(key_t.dim(1)),
                  kExitInternal);
    }
    // Pre-activations by the compressor's product kernel (dense_products.h: FP32, the same bits
    // for any thread count), a block of samples at a time so that only labels stay N x F. On
    // the training thread (jobs already run in parallel), when the trainer starts the layer.
    const int64_t F = key_t.dim(0), D = key_t.dim(1);
    const float* key = key_t.data.data();
    const auto make_labels = [&X, key, N, F, D](std::vector<uint8_t>& labels) {
      labels.resize(static_cast<size_t>(N * F));
      constexpr int64_t kRowsPerBlock = 512;
      std::vector<float> pre(static_cast<size_t>(std::min(N, kRowsPerBlock) * F));
      ThreadPool this_thread(1);
      for (int64_t r0 = 0; r0 < N; r0 += kRowsPerBlock) {
        const int64_t rn = std::min(kRowsPerBlock, N - r0);
        multiply_rows_by_transpose(X.data() + r0 * D, rn, key, F, D, pre.data(), F, this_thread);
        uint8_t* out = labels.data() + r0 * F;
        for (int64_t e = 0; e < rn * F; ++e) out[e] = pre[static_cast<size_t>(e)] > 0.0f;
      }
    };
    PredictorTrainingJob& job = jobs[i];
    job.inputs = &X;
    job.train_rows = train_rows;
    job.make_labels = make_labels;
    job.ffn_size = key_t.dim(0);
    job.rank = options_.rank;
    job.epochs = options_.epochs;
    job.batch_size = options_.batch_size;
    job.learning_rate = options_.learning_rate;
    job.seed = layer_seed(ctx.seed, l);
  }
  return jobs;
}

// Stage 3 for one layer, on the thread that trained it: the threshold on the held-out samples
// and the layer's report row (the model is not changed here).
PassReportRow SparsityPredictorPass::evaluate_layer(const PassContext& ctx, int64_t l, const TrainedPredictor& p,
                                                    const std::vector<uint8_t>& labels, int64_t train_rows,
                                                    float& threshold) const {
  const auto t0 = std::chrono::steady_clock::now();
  const CalibrationData* calibration = ctx.calibration;
  const int64_t held_out = calibration->ffn_key_inputs[0].rows() - train_rows;
  const Tensor& key_t = ctx.model.at(layout::ffn_key_weight(l)).values;
  const int64_t F = key_t.dim(0), D = key_t.dim(1);
  const ConstMap key(key_t.data.data(), F, D);
  if (p.down.shape != std::vector<int64_t>{options_.rank, D} || p.up.shape != std::vector<int64_t>{F, options_.rank}) {
    throw Error("sparsity_predictor: the trainer returned predictor tensors of the wrong shape", kExitInternal);
  }
  const ConstMap down(p.down.data.data(), options_.rank, D), up(p.up.data.data(), F, options_.rank);
  const auto Xh = calibration->ffn_key_inputs[static_cast<size_t>(l)].bottomRows(held_out);
  const RowMajorF hidden = (Xh * down.transpose()).cwiseMax(0.0f);
  const RowMajorF scores = hidden * up.transpose();
  const int k = sign_top_k_for(options_.sign_top_fraction, F);
  // Without a 1-bit copy (k = 0) the sign rule selects nothing and its scores are not needed.
  RowMajorF sign_scores(Xh.rows(), k > 0 ? F : 0);
  if (k > 0) {
    Eigen::VectorXf scale;
    const RowMajorF signs = sign_key(key, scale);
    sign_scores = (Xh * signs.transpose()) * scale.asDiagonal();
  }
  const HeldOutResult result = tune_threshold(scores, sign_scores, labels.data() + train_rows * F, k, options_.target_recall);
  threshold = result.threshold;
  const int64_t bytes = predictor_bytes(F, D, options_.rank, k > 0);

  const PredictorQuality& q = result.quality;
  const std::string prefix = layout::ffn_prefix(l);
  PassReportRow row;
  row.tensor = prefix + "predictor";
  row.shape = key_t.shape;
  row.encoding_after = "f32";
  row.action = "predictor r=" + std::to_string(options_.rank);
  row.bytes_after = bytes;
  row.metric = "recall";
  row.value = q.recall;
  row.seconds = p.seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  row.extra["layer"] = l;
  row.extra["true_sparsity"] = 1.0 - calibration->ffn_active_fraction[static_cast<size_t>(l)];
  row.extra["heldout_recall"] = q.recall;
  row.extra["predicted_active_fraction"] = q.predicted_active_fraction;
  row.extra["precision"] = q.precision;
  row.extra["mlp_threshold"] = result.threshold;
  row.extra["sign_top_k"] = k;
  row.extra["sign_only_recall"] = q.sign_only_recall;
  row.extra["train_seconds"] = p.seconds;
  row.extra["predictor_bytes"] = bytes;
  row.extra["final_loss"] = p.final_loss;
  row.extra["train_samples"] = train_rows;
  row.extra["heldout_samples"] = held_out;
  return row;
}

std::vector<PassReportRow> SparsityPredictorPass::run(PassContext& ctx) {
  validate(ctx.model);
  check_calibration(ctx.model, ctx.calibration);
  CompressedModel& model = ctx.model;
  if (model.file_metadata.contains(layout::SparseFfnMeta::kKey)) {
    throw UsageError("sparsity_predictor: the config has two sparsity_predictor passes; give one");
  }
  const std::vector<int64_t> layers = selected_layers(model);
  if (ctx.on_start) ctx.on_start(static_cast<int64_t>(layers.size()));
  const int64_t N = ctx.calibration->ffn_key_inputs[0].rows();
  const int64_t train_rows = N - static_cast<int64_t>(std::llround(options_.holdout_fraction * static_cast<double>(N)));

  const std::vector<PredictorTrainingJob> jobs = training_jobs(ctx, layers, train_rows);

  // 2. Training (LibTorch; deterministic for any thread count), and 3. each layer's threshold
  //    and report row as soon as it is trained.
  std::vector<float> thresholds(layers.size());
  OrderedRows rows(layers.size(), ctx.on_row);
  const std::vector<TrainedPredictor> trained =
      (*registered_predictor_trainer())(jobs, ctx.threads, [&](size_t i, const TrainedPredictor& p, const std::vector<uint8_t>& labels) {
        rows.finish(i, evaluate_layer(ctx, layers[i], p, labels, train_rows, thresholds[i]));
      });
  if (trained.size() != jobs.size()) throw Error("sparsity_predictor: the trainer returned too few predictors", kExitInternal);

  // 4. Tensors and metadata, in layer order.
  layout::SparseFfnMeta sparse_ffn;
  sparse_ffn.neuron_cache_fraction = options_.neuron_cache_fraction;
  for (size_t i = 0; i < layers.size(); ++i) {
    const int64_t l = layers[i];
    const Tensor& key_t = model.at(layout::ffn_key_weight(l)).values;
    const int k = sign_top_k_for(options_.sign_top_fraction, key_t.dim(0));
    std::optional<Tensor> sign;
    if (k > 0) sign = key_t;
    put_predictor_tensors(model, l, trained[i].down, trained[i].up, std::move(sign));
    sparse_ffn.layers.push_back({l, thresholds[i], k});
  }
  model.file_metadata[layout::SparseFfnMeta::kKey] = sparse_ffn.to_json();
  return rows.take();
}

}  // namespace rwkvlite
