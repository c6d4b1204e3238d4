#include "runtime/store/neuron_channel_mix.h"

#include <algorithm>
#include <cstring>

#include "runtime/core/error.h"
#include "runtime/engine/kernels.h"
#include "runtime/format/codec.h"

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
  const int64_t lanes_end = f_ - f_ % format::kDotLanes;
  Scratch::Frame frame(scratch);
  float* lanes = scratch.take(static_cast<size_t>((format::kDotLanes + 1) * d_));
  float* tail = lanes + format::kDotLanes * d_;
  for (int64_t t = 0; t < n; ++t) {
    const float* x = x_k + t * d_;
    float* y = out + t * d_;
    std::fill(lanes, lanes + (format::kDotLanes + 1) * d_, 0.0f);
    select(x, scratch, pool);
    const RowCacheCounters before = cache_->counters();
    if (options_.trace) cache_->clear_read_log();
    cache_->visit(selected_.data(), static_cast<int64_t>(selected_.size()),
                  [&](int64_t j, const uint8_t* const* rows) {
                    const float a = std::max(format::dot_row(rows[0], x, d_, key_enc_), 0.0f);
                    const float h = a * a;
                    if (h == 0.0f) return;
                    float* acc = j < lanes_end ? lanes + (j % format::kDotLanes) * d_ : tail;
                    format::axpy_row(h, rows[1], d_, value_enc_, acc);
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

}  // namespace rwkvlite
