#include "runtime/store/neuron_channel_mix.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/core/error.h"
#include "runtime/engine/kernels.h"
#include "runtime/format/codec.h"
#include "runtime/format/layout.h"
#include "runtime/store/encoded_projection.h"

namespace rwkvlite {

NeuronChannelMix::NeuronChannelMix(std::shared_ptr<const format::CompactFile> file, const std::string& key_name,
                                   const std::string& value_name, NeuronPredictor predictor,
                                   NeuronChannelMixOptions options, std::shared_ptr<ResidencyCounter> layer_counter,
                                   std::shared_ptr<SparseFfnLayerStats> stats)
    : predictor_(std::move(predictor)),
      options_(std::move(options)),
      stats_(std::move(stats)),
      layer_counter_(std::move(layer_counter)) {
  const format::TensorInfo& key = file->tensor(key_name);
  const format::TensorInfo& value = file->tensor(value_name);
  if (key.shape.size() != 2 || value.shape != key.shape) {
    throw InputError("'" + file->path() + "': '" + value_name + "' must have the shape of '" + key_name +
                     "' ([F, D], neuron-major)");
  }
  f_ = key.rows;
  d_ = key.cols;
  key_enc_ = key.encoding;
  value_enc_ = value.encoding;
  const std::string where = "'" + file->path() + "' layer " + std::to_string(options_.layer);
  if (predictor_.down && (predictor_.down->cols() != d_ || !predictor_.up || predictor_.up->rows() != f_ ||
                          predictor_.up->cols() != predictor_.down->rows())) {
    throw InputError(where + ": the predictor MLP must be down [r, " + std::to_string(d_) + "] and up [" +
                     std::to_string(f_) + ", r]");
  }
  if (predictor_.sign && (predictor_.sign->rows() != f_ || predictor_.sign->cols() != d_)) {
    throw InputError(where + ": the 1-bit key copy must be [" + std::to_string(f_) + ", " + std::to_string(d_) + "]");
  }
  if (predictor_.sign && (predictor_.sign_top_k < 1 || predictor_.sign_top_k > f_)) {
    throw InputError(where + ": sign_top_k must be in [1, " + std::to_string(f_) + "], got " +
                     std::to_string(predictor_.sign_top_k));
  }
  cache_ = std::make_unique<RowCache>(file, std::vector<std::string>{key_name, value_name}, options_.cache_rows,
                                      layer_counter_);
  cache_->enable_read_log(static_cast<bool>(options_.trace));
  if (options_.audit) {
    const Tensor k = file->decode_tensor(key_name);
    audit_key_.assign(k.data.begin(), k.data.end());
  }
  stats_->layer = options_.layer;
  stats_->width = f_;
  stats_->cache_rows = cache_->capacity();
  stats_->has_predictor = !predictor_.empty();
  stats_->resident_peak_bytes = layer_counter_->peak();
  chosen_.assign(static_cast<size_t>(f_), 0);
}

int64_t NeuronChannelMix::storage_bytes() const {
  int64_t bytes = cache_->capacity() * static_cast<int64_t>(cache_->entry_bytes());
  for (const Projection* p : {predictor_.down.get(), predictor_.up.get(), predictor_.sign.get()}) {
    if (p) bytes += p->storage_bytes();
  }
  return bytes;
}

void NeuronChannelMix::select(const float* x, Scratch& scratch, ThreadPool& pool) const {
  selected_.clear();
  if (predictor_.empty()) {
    for (int64_t j = 0; j < f_; ++j) selected_.push_back(j);
    return;
  }
  Scratch::Frame frame(scratch);
  std::fill(chosen_.begin(), chosen_.end(), uint8_t{0});
  if (predictor_.down) {
    const int64_t r = predictor_.down->rows();
    float* h = scratch.take(static_cast<size_t>(r));
    float* score = scratch.take(static_cast<size_t>(f_));
    predictor_.down->apply(x, h, pool);
    for (int64_t i = 0; i < r; ++i) h[i] = std::max(h[i], 0.0f);
    predictor_.up->apply(h, score, pool);
    for (int64_t j = 0; j < f_; ++j) chosen_[static_cast<size_t>(j)] |= score[j] > predictor_.mlp_threshold ? 1 : 0;
  }
  if (predictor_.sign) {
    float* s = scratch.take(static_cast<size_t>(f_));
    predictor_.sign->apply(x, s, pool);
    order_.resize(static_cast<size_t>(f_));
    for (int64_t j = 0; j < f_; ++j) order_[static_cast<size_t>(j)] = j;
    // A total order (score descending, then index ascending) makes the top k unique.
    const auto k = static_cast<std::ptrdiff_t>(predictor_.sign_top_k);
    std::nth_element(order_.begin(), order_.begin() + (k - 1), order_.end(), [s](int64_t a, int64_t b) {
      return s[a] > s[b] || (s[a] == s[b] && a < b);
    });
    for (std::ptrdiff_t i = 0; i < k; ++i) chosen_[static_cast<size_t>(order_[static_cast<size_t>(i)])] = 1;
  }
  for (int64_t j = 0; j < f_; ++j) {
    if (chosen_[static_cast<size_t>(j)]) selected_.push_back(j);
  }
}

void NeuronChannelMix::audit(const float* x) const {
  int64_t active = 0, hit = 0;
  size_t next = 0;  // walks selected_, which is ascending
  for (int64_t j = 0; j < f_; ++j) {
    while (next < selected_.size() && selected_[next] < j) ++next;
    if (kernels::dot(&audit_key_[static_cast<size_t>(j * d_)], x, d_) > 0.0f) {
      ++active;
      if (next < selected_.size() && selected_[next] == j) ++hit;
    }
  }
  stats_->audit_tokens += 1;
  stats_->active += active;
  stats_->active_and_selected += hit;
}

void NeuronChannelMix::apply(const float* x_k, int64_t n, float* out, float* key_preact, Scratch& scratch,
                             ThreadPool& pool) const {
  if (key_preact) {
    throw UsageError("layer " + std::to_string(options_.layer) +
                     ": a sparse (neuron-major) channel mix cannot produce exact key pre-activations for calibration; "
                     "calibrate on the dense model");
  }
  // The value sum y = Σ_j h_j v_j is accumulated the way the dense path's row dot
  // (format::dot_row over the [D, F] value) accumulates it: neuron j goes to lane j mod 8, the
  // last F mod 8 neurons to a tail, and the lanes are combined in dot_row's fixed order. With
  // every neuron selected and FP32 values, sparse and dense results are then bit-identical;
  // skipped neurons have h_j = 0 and add nothing in either path.
  //
  // Each batch of resident neurons is computed in two parallel steps, both deterministic: the
  // key dot products h_j (one neuron per item), then the value sums split by lane (item k owns
  // lane k, item kDotLanes the tail), so every lane still adds its neurons in ascending order.
  const int64_t lanes_end = f_ - f_ % format::kDotLanes;
  constexpr int64_t kLaneItems = format::kDotLanes + 1;
  Scratch::Frame frame(scratch);
  float* lanes = scratch.take(static_cast<size_t>(kLaneItems * d_));
  float* tail = lanes + format::kDotLanes * d_;
  float* h = scratch.take(static_cast<size_t>(f_));
  auto lane_of = [&](int64_t j) { return j < lanes_end ? j % format::kDotLanes : format::kDotLanes; };
  for (int64_t t = 0; t < n; ++t) {
    const float* x = x_k + t * d_;
    float* y = out + t * d_;
    std::fill(lanes, lanes + kLaneItems * d_, 0.0f);
    select(x, scratch, pool);
    const RowCacheCounters before = cache_->counters();
    if (options_.trace) cache_->clear_read_log();
    cache_->visit_batches(selected_.data(), static_cast<int64_t>(selected_.size()), [&](const int64_t* rows, int64_t count) {
      cache_->resident_parts(rows, count, 0, key_rows_);
      cache_->resident_parts(rows, count, 1, value_rows_);
      pool.parallel_for(0, count, d_, [&](int64_t lo, int64_t hi) {
        format::dot_rows_gathered(key_rows_.data() + lo, hi - lo, x, d_, key_enc_.encoding, key_enc_.params, h + lo);
        for (int64_t i = lo; i < hi; ++i) {
          const float a = std::max(h[i], 0.0f);
          h[i] = a * a;
        }
      });
      pool.parallel_for(0, kLaneItems, count * d_ / kLaneItems, [&](int64_t lo, int64_t hi) {
        for (int64_t i = 0; i < count; ++i) {
          const int64_t lane = lane_of(rows[i]);
          if (lane < lo || lane >= hi || h[i] == 0.0f) continue;
          format::axpy_row(h[i], value_rows_[static_cast<size_t>(i)], d_, value_enc_, lanes + lane * d_);
        }
      });
    });
    format::combine_dot_lanes(lanes, tail, d_, y);
    const RowCacheCounters& after = cache_->counters();
    stats_->tokens += 1;
    stats_->neurons_selected += static_cast<int64_t>(selected_.size());
    stats_->rows_read += after.rows_read - before.rows_read;
    stats_->cache_hits += after.hits - before.hits;
    stats_->cache_misses += after.misses - before.misses;
    stats_->resident_peak_bytes = layer_counter_->peak();
    if (!audit_key_.empty()) audit(x);
    if (options_.trace) {
      options_.trace(NeuronSelection{options_.layer, std::span<const float>(x, static_cast<size_t>(d_)), selected_,
                                     cache_->read_log()});
    }
  }
}

namespace {

// The cache fraction the runtime uses: the override, else the file's, else 1.
double checked_cache_fraction(const std::optional<double>& override_fraction,
                              const std::optional<layout::SparseFfnMeta>& meta, const std::string& where) {
  const std::optional<double> from_file = meta ? meta->neuron_cache_fraction : std::nullopt;
  const double fraction = override_fraction.value_or(from_file.value_or(1.0));
  if (!(fraction > 0.0 && fraction <= 1.0)) {
    const std::string msg = "neuron cache fraction must be in (0, 1], got " + std::to_string(fraction);
    if (override_fraction) throw UsageError(msg);
    throw InputError(where + ": metadata " + msg);
  }
  return fraction;
}

// The layer's predictor: the MLP when predictor.down/up are stored, the 1-bit key when
// key.sign is, each with its setting from the layer's sparse_ffn entry.
NeuronPredictor read_predictor(const format::CompactFile& file, int64_t layer, int64_t f, int64_t d,
                               const layout::SparseFfnLayerMeta* settings, const std::string& lw,
                               const std::shared_ptr<ResidencyCounter>& counter) {
  NeuronPredictor predictor;
  const std::string down_name = layout::ffn_predictor_down(layer), up_name = layout::ffn_predictor_up(layer);
  const bool has_down = file.find(down_name), has_up = file.find(up_name);
  if (has_down != has_up) throw InputError(lw + ": the predictor needs both 'predictor.down' and 'predictor.up'");
  if (has_down) {
    const format::TensorInfo& down = file.tensor(down_name);
    predictor.down = read_encoded_projection(file, down_name, down.rows, d, counter);
    predictor.up = read_encoded_projection(file, up_name, f, down.rows, counter);
    if (!settings || !settings->mlp_threshold) {
      throw InputError(lw + ": metadata sparse_ffn.layers has no 'mlp_threshold' for the MLP predictor");
    }
    predictor.mlp_threshold = static_cast<float>(*settings->mlp_threshold);
  }
  const std::string sign_name = layout::ffn_key_sign(layer);
  if (file.find(sign_name)) {
    predictor.sign = read_encoded_projection(file, sign_name, f, d, counter);
    if (!settings || !settings->sign_top_k) {
      throw InputError(lw + ": metadata sparse_ffn.layers has no 'sign_top_k' for the 1-bit predictor");
    }
    predictor.sign_top_k = *settings->sign_top_k;
  }
  return predictor;
}

}  // namespace

std::function<std::unique_ptr<ChannelMix>(int64_t layer)> make_sparse_ffn_provider(
    std::shared_ptr<const format::CompactFile> file, SparseFfnRuntimeOptions options,
    std::shared_ptr<RuntimeStats> stats) {
  const std::string where = "'" + file->path() + "'";
  std::optional<layout::SparseFfnMeta> meta = layout::SparseFfnMeta::from_json(file->metadata(), where);
  const double cache_fraction = checked_cache_fraction(options.neuron_cache_fraction, meta, where);
  return [file, options = std::move(options), stats, meta = std::move(meta), cache_fraction,
          where](int64_t layer) -> std::unique_ptr<ChannelMix> {
    const std::string key_name = layout::ffn_key_weight(layer), value_name = layout::ffn_value_neurons(layer);
    if (!file->find(value_name)) return nullptr;
    if (!file->find(key_name)) {
      throw InputError(where + " has '" + value_name + "' but no row-addressable '" + key_name + "'");
    }
    const int64_t f = file->tensor(key_name).rows, d = file->tensor(key_name).cols;
    auto layer_counter = std::make_shared<ResidencyCounter>(stats->residency.ffn);
    const std::string lw = where + " layer " + std::to_string(layer);
    NeuronPredictor predictor =
        read_predictor(*file, layer, f, d, meta ? meta->layer(layer) : nullptr, lw, layer_counter);
    NeuronChannelMixOptions o;
    o.layer = layer;
    // A layer without a predictor computes every neuron on every token, so unless the user asks
    // for less, its cache holds all of them (a smaller one would only re-read rows each token).
    const double fraction = predictor.empty() && !options.neuron_cache_fraction ? 1.0 : cache_fraction;
    o.cache_rows = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(fraction * static_cast<double>(f))));
    o.audit = options.audit;
    o.trace = options.trace;
    auto layer_stats = std::make_shared<SparseFfnLayerStats>();
    stats->ffn_layers.push_back(layer_stats);
    return std::make_unique<NeuronChannelMix>(file, key_name, value_name, std::move(predictor), std::move(o),
                                              layer_counter, layer_stats);
  };
}

}  // namespace rwkvlite
