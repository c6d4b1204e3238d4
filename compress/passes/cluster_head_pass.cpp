#include "compress/passes/cluster_head_pass.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "runtime/core/error.h"
#include "compress/algo/cluster_head_training.h"
#include "compress/algo/kmeans.h"
#include "runtime/core/seeded_random.h"
#include "runtime/format/layout.h"

namespace rwkvlite {

namespace {

constexpr const char* kHead = layout::kHead;
constexpr int kMaxClusters = 1 << 20;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

nlohmann::ordered_json quality_json(const ClusterHeadQuality& q) {
  return {{"kl", q.kl},
          {"top_cluster_accuracy", q.top_cluster_accuracy},
          {"mean_clusters_kept", q.mean_clusters_kept},
          {"mass_covered", q.mass_covered}};
}

Tensor int_tensor(const std::vector<int32_t>& values) {
  Tensor t({static_cast<int64_t>(values.size())});
  // i32 tensors travel as floats until the writer encodes them: exact below 2^24.
  for (size_t i = 0; i < values.size(); ++i) t.data[i] = static_cast<float>(values[i]);
  return t;
}

// Rows grouped by cluster: cluster 0 first, ascending token id inside each; offsets[c] is the
// first row of cluster c (k + 1 entries).
struct ClusterLayout {
  std::vector<int32_t> row_token;
  std::vector<int32_t> offsets{0};
  int64_t smallest = 0, largest = 0;  // cluster sizes
};

ClusterLayout cluster_layout(const std::vector<int32_t>& cluster_of_token, int k) {
  const auto v = static_cast<int64_t>(cluster_of_token.size());
  ClusterLayout g;
  std::vector<int32_t>& row_token = g.row_token;
  std::vector<int32_t>& offsets = g.offsets;
  row_token.reserve(static_cast<size_t>(v));
  for (int c = 0; c < k; ++c) {
    for (int64_t t = 0; t < v; ++t) {
      if (cluster_of_token[static_cast<size_t>(t)] == c) row_token.push_back(static_cast<int32_t>(t));
    }
    offsets.push_back(static_cast<int32_t>(row_token.size()));
  }
  int64_t smallest = v, largest = 0;
  for (int c = 0; c < k; ++c) {
    smallest = std::min<int64_t>(smallest, offsets[static_cast<size_t>(c) + 1] - offsets[static_cast<size_t>(c)]);
    largest = std::max<int64_t>(largest, offsets[static_cast<size_t>(c) + 1] - offsets[static_cast<size_t>(c)]);
  }
  g.smallest = smallest;
  g.largest = largest;
  return g;
}

// The tensors of the contract (head.clustered, head.row_token, head.cluster_offsets,
// head.cluster_weight, head.cluster_bias) in place of head.weight: values in a run, only
// shapes in a plan. head.clustered keeps the head's encoding (a quantize pass before this one
// chose it) and is row-addressable: the runtime reads the rows of the kept clusters only.
struct ClusterHeadTensors {
  Tensor clustered, row_token, offsets, weight, bias;
};

std::vector<StoredTensor> stored_cluster_tensors(ClusterHeadTensors t, const std::string& head_encoding) {
  std::vector<StoredTensor> out;
  out.push_back({layout::kClusteredHead, std::move(t.clustered), head_encoding, true, {}});
  out.push_back({layout::kHeadRowToken, std::move(t.row_token), "i32", false, {}});
  out.push_back({layout::kHeadClusterOffsets, std::move(t.offsets), "i32", false, {}});
  out.push_back({layout::kHeadClusterWeight, std::move(t.weight), "f32", false, {}});
  out.push_back({layout::kHeadClusterBias, std::move(t.bias), "f32", false, {}});
  return out;
}

void replace_head(CompressedModel& model, std::vector<StoredTensor> tensors, const ClusterHeadOptions& options) {
  const int k = options.k;
  std::string after = kHead;
  for (StoredTensor& t : tensors) {
    const std::string name = t.name;
    model.put(std::move(t), after);
    after = name;
  }
  model.remove(kHead);
  model.file_metadata[layout::ClusteredHeadMeta::kKey] =
      layout::ClusteredHeadMeta{k, options.p, options.min_clusters, options.max_clusters}.to_json();
}

}  // namespace

// ---- Options ------------------------------------------------------------------------------

ClusterHeadOptions ClusterHeadOptions::read(OptionReader& r) {
  ClusterHeadOptions o;
  o.k = static_cast<int>(r.get_int("k", o.k, 1, kMaxClusters));
  o.source = r.get_choice("source", o.source, {"head", "embedding"});
  o.pca_dims = static_cast<int>(r.get_int("pca_dims", o.pca_dims, 0, 1 << 20));
  o.max_iterations = static_cast<int>(r.get_int("max_iterations", o.max_iterations, 1, 1000000));
  o.p = r.get_double("p", o.p, 0.0, 1.0);
  if (o.p <= 0) r.fail("p", "'p' of " + r.where() + " must be > 0 (a cumulative probability in (0, 1])");
  o.min_clusters = static_cast<int>(r.get_int("min_clusters", o.min_clusters, 1, o.k));
  o.max_clusters = static_cast<int>(r.get_int("max_clusters", o.k, o.min_clusters, o.k));
  o.epochs = static_cast<int>(r.get_int("epochs", o.epochs, 0, 10000));
  o.learning_rate = r.get_double("learning_rate", o.learning_rate, 0.0, 1.0);
  if (o.learning_rate <= 0) r.fail("learning_rate", "'learning_rate' of " + r.where() + " must be > 0");
  o.holdout_fraction = r.get_double("holdout_fraction", o.holdout_fraction, 0.0, 0.9);
  return o;
}

void ClusterHeadOptions::check() const {
  auto fail = [](const std::string& m) { throw UsageError("cluster_head: " + m); };
  if (k < 1) fail("k must be >= 1");
  if (source != "head" && source != "embedding") fail("source must be \"head\" or \"embedding\"");
  if (pca_dims < 0) fail("pca_dims must be >= 0");
  if (max_iterations < 1) fail("max_iterations must be >= 1");
  if (!(p > 0 && p <= 1)) fail("p must be in (0, 1]");
  if (min_clusters < 1 || min_clusters > k) fail("min_clusters must be in [1, k]");
  if (max_clusters < min_clusters || max_clusters > k) fail("max_clusters must be in [min_clusters, k]");
  if (epochs < 0) fail("epochs must be >= 0");
  if (!(learning_rate > 0 && learning_rate <= 1)) fail("learning_rate must be in (0, 1]");
  if (!(holdout_fraction >= 0 && holdout_fraction <= 0.9)) fail("holdout_fraction must be in [0, 0.9]");
}

// ---- Pass ---------------------------------------------------------------------------------

ClusterHeadPass::ClusterHeadPass(ClusterHeadOptions options) : options_(std::move(options)) { options_.check(); }

std::string ClusterHeadPass::source_tensor(const CompressedModel& model) const {
  if (options_.source == "head") return kHead;
  return model.has(layout::kEmbedding) ? layout::kEmbedding : layout::kFoldedEmbedding;
}

void ClusterHeadPass::validate(const CompressedModel& model) const {
  if (registered_cluster_head_trainer() == nullptr) {
    throw UsageError("this rwkvlite was built without LibTorch; cluster_head needs it");
  }
  if (!model.has(kHead)) {
    throw UsageError(std::string("cluster_head: the model has no '") + kHead + "'" +
                     (model.has(layout::kClusteredHead) ? " (it is clustered already: is cluster_head listed twice?)" : ""));
  }
  const Tensor& head = model.at(kHead).values;
  if (head.rank() != 2 || head.dim(1) != model.dims.n_embd) {
    throw UsageError("cluster_head: '" + std::string(kHead) + "' has shape " + shape_to_string(head.shape) +
                     ", expected [V, " + std::to_string(model.dims.n_embd) + "]");
  }
  if (options_.k > head.dim(0)) {
    throw UsageError("cluster_head: k = " + std::to_string(options_.k) + " is more than the vocabulary (" +
                     std::to_string(head.dim(0)) + " tokens)");
  }
  if (head.dim(0) >= (int64_t{1} << 24)) throw UsageError("cluster_head: vocabularies of 2^24 tokens or more are not supported");
  const std::string source = source_tensor(model);
  if (!model.has(source)) throw UsageError("cluster_head: source \"embedding\" needs 'emb.weight' or 'emb.folded'");
  const Tensor& rows = model.at(source).values;
  if (rows.rank() != 2 || rows.dim(0) != head.dim(0)) {
    throw UsageError("cluster_head: '" + source + "' has shape " + shape_to_string(rows.shape) + ", expected [" +
                     std::to_string(head.dim(0)) + ", D]");
  }
  if (options_.pca_dims > rows.dim(1)) {
    throw UsageError("cluster_head: pca_dims = " + std::to_string(options_.pca_dims) + " is more than the " +
                     std::to_string(rows.dim(1)) + " columns of '" + source + "'");
  }
}

void ClusterHeadPass::plan(CompressPlan& plan) const {
  const StoredTensor& head = plan.model.at(kHead);
  const int64_t v = head.values.dim(0), d = head.values.dim(1), k = options_.k;
  const auto shape = &CompressedModel::shape_only;
  ClusterHeadTensors t{shape({v, d}), shape({v}), shape({k + 1}), shape({k, d}), shape({k})};
  replace_head(plan.model, stored_cluster_tensors(std::move(t), head.encoding), options_);
}

void ClusterHeadPass::check_calibration(const PassContext& ctx) const {
  const int64_t d = ctx.model.at(kHead).values.dim(1);
  if (ctx.calibration == nullptr || ctx.calibration->head_inputs.rows() < 2) {
    throw UsageError("cluster_head: needs calibration with at least 2 sampled head inputs (raise calibration.bytes)");
  }
  const ClusterRows& inputs = ctx.calibration->head_inputs;
  if (inputs.cols() != d) {
    throw Error("cluster_head: calibration head inputs have " + std::to_string(inputs.cols()) + " columns, the head " +
                    std::to_string(d),
                kExitInternal);
  }
}

KMeansResult ClusterHeadPass::cluster_vocabulary(const PassContext& ctx) const {
  const Tensor& source = ctx.model.at(source_tensor(ctx.model)).values;
  KMeansOptions km;
  km.k = options_.k;
  km.max_iterations = options_.max_iterations;
  km.pca_dims = options_.pca_dims;
  km.seed = ctx.seed;
  km.threads = ctx.threads;
  return kmeans(Eigen::Map<const KMeansRows>(source.data.data(), source.dim(0), source.dim(1)), km);
}

// Stage 3. Cluster-level head: targets from the dense head, initial guess, training,
// evaluation on the held-out tail of the samples (calibration samples are in text order).
ClusterHeadPass::Trained ClusterHeadPass::train_cluster_head(const PassContext& ctx,
                                                            const std::vector<int32_t>& cluster_of_token) const {
  const Tensor& head = ctx.model.at(kHead).values;
  const ClusterRows& inputs = ctx.calibration->head_inputs;
  const int k = options_.k;
  const DenseClusterTargets targets = dense_cluster_targets(inputs, head, cluster_of_token, k, ctx.threads);
  const int64_t n = inputs.rows();
  int64_t held_out = static_cast<int64_t>(std::floor(options_.holdout_fraction * static_cast<double>(n)));
  if (options_.holdout_fraction > 0) held_out = std::max<int64_t>(held_out, 1);
  Trained out;
  out.train_rows = n - held_out;
  const int64_t eval_begin = held_out > 0 ? out.train_rows : 0;
  const ClusterKeepRule keep{options_.p, options_.min_clusters, options_.max_clusters};
  out.weights = initial_cluster_head(head, cluster_of_token, k);
  out.before = evaluate_cluster_head(out.weights, inputs, targets, eval_begin, n, keep);
  ClusterHeadTrainingOptions training;
  training.epochs = options_.epochs;
  training.learning_rate = options_.learning_rate;
  uint64_t seed_state = ctx.seed;
  training.seed = SeededRandom::splitmix64(seed_state);  // independent of the k-means stream
  const auto t_train = std::chrono::steady_clock::now();
  registered_cluster_head_trainer()(out.weights, inputs, targets.probabilities, out.train_rows, training);
  out.seconds = seconds_since(t_train);
  out.after = evaluate_cluster_head(out.weights, inputs, targets, eval_begin, n, keep);
  return out;
}

std::vector<PassReportRow> ClusterHeadPass::run(PassContext& ctx) {
  validate(ctx.model);
  check_calibration(ctx);
  if (ctx.on_start) ctx.on_start(5);
  const auto t_start = std::chrono::steady_clock::now();
  CompressedModel& model = ctx.model;
  const StoredTensor& head = model.at(kHead);
  const int64_t v = head.values.dim(0), d = head.values.dim(1);
  const int k = options_.k;

  // 1. Clusters of the vocabulary; 2. rows grouped by cluster.
  const KMeansResult clusters = cluster_vocabulary(ctx);
  const ClusterLayout layout = cluster_layout(clusters.assignment, k);
  const Trained trained = train_cluster_head(ctx, clusters.assignment);

  // 4. Tensors of the contract.
  ClusterHeadTensors t;
  t.clustered = Tensor({v, d});
  for (int64_t r = 0; r < v; ++r) {
    const float* src = head.values.data.data() + static_cast<size_t>(layout.row_token[static_cast<size_t>(r)]) * d;
    std::copy(src, src + d, t.clustered.data.data() + static_cast<size_t>(r) * d);
  }
  t.row_token = int_tensor(layout.row_token);
  t.offsets = int_tensor(layout.offsets);
  t.weight = Tensor({k, d}, std::vector<float>(trained.weights.weight.data(), trained.weights.weight.data() + k * d));
  t.bias = Tensor({k}, trained.weights.bias);
  std::vector<StoredTensor> tensors = stored_cluster_tensors(std::move(t), head.encoding);

  std::vector<PassReportRow> rows;
  PassReportRow main_row;
  main_row.tensor = tensors[0].name;
  main_row.shape = head.values.shape;
  main_row.encoding_before = main_row.encoding_after = head.encoding;
  main_row.action = "cluster k=" + std::to_string(k);
  main_row.bytes_before = head.stored_bytes();
  main_row.bytes_after = main_row.bytes_before;
  main_row.metric = "kl";
  main_row.value = trained.after.kl;
  main_row.extra["kmeans"] = {{"source", source_tensor(model)},
                              {"iterations", clusters.iterations},
                              {"converged", clusters.converged},
                              {"inertia", clusters.inertia},
                              {"smallest_cluster", layout.smallest},
                              {"largest_cluster", layout.largest}};
  main_row.extra["train_samples"] = trained.train_rows;
  main_row.extra["heldout_samples"] = trained.after.samples;
  main_row.extra["heldout"] = quality_json(trained.after);
  main_row.extra["heldout_initial"] = quality_json(trained.before);
  main_row.extra["training_seconds"] = trained.seconds;
  main_row.seconds = seconds_since(t_start);
  rows.push_back(main_row);
  for (size_t i = 1; i < tensors.size(); ++i) {
    PassReportRow row;
    row.tensor = tensors[i].name;
    row.shape = tensors[i].values.shape;
    row.encoding_after = tensors[i].encoding;
    row.action = "add " + tensors[i].encoding;
    row.bytes_after = tensors[i].stored_bytes();
    rows.push_back(row);
  }
  replace_head(model, std::move(tensors), options_);
  for (const PassReportRow& row : rows) {
    if (ctx.on_row) ctx.on_row(row);
  }
  return rows;
}

}  // namespace rwkvlite
