#include "runtime/store/two_level_head.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"
#include "runtime/format/codec.h"
#include "runtime/format/layout.h"

namespace rwkvlite {

TwoLevelHead::TwoLevelHead(std::shared_ptr<const format::CompactFile> file, TwoLevelHeadOptions options,
                           std::shared_ptr<ResidencyCounter> counter, std::shared_ptr<ClusteredHeadStats> stats)
    : options_(options), stats_(std::move(stats)) {
  const std::string where = "'" + file->path() + "': ";
  const format::TensorInfo& rows = file->tensor(layout::kClusteredHead);
  if (rows.shape.size() != 2) throw InputError(where + "'head.clustered' must be [V, D]");
  v_ = rows.rows;
  d_ = rows.cols;
  row_enc_ = rows.encoding;

  row_token_ = file->read_i32_tensor(layout::kHeadRowToken);
  if (static_cast<int64_t>(row_token_.size()) != v_) {
    throw InputError(where + "'head.row_token' has " + std::to_string(row_token_.size()) + " entries, expected " +
                     std::to_string(v_));
  }
  std::vector<uint8_t> seen(static_cast<size_t>(v_), 0);
  for (int32_t t : row_token_) {
    if (t < 0 || t >= v_ || seen[static_cast<size_t>(t)]) {
      throw InputError(where + "'head.row_token' is not a permutation of 0.." + std::to_string(v_ - 1) + " (token " +
                       std::to_string(t) + ")");
    }
    seen[static_cast<size_t>(t)] = 1;
  }

  offsets_ = file->read_i32_tensor(layout::kHeadClusterOffsets);
  if (offsets_.size() < 2 || offsets_.front() != 0 || offsets_.back() != v_) {
    throw InputError(where + "'head.cluster_offsets' must start at 0 and end at " + std::to_string(v_));
  }
  for (size_t c = 0; c + 1 < offsets_.size(); ++c) {
    if (offsets_[c + 1] <= offsets_[c]) {
      throw InputError(where + "'head.cluster_offsets': cluster " + std::to_string(c) + " is empty or reversed");
    }
  }
  k_ = static_cast<int64_t>(offsets_.size()) - 1;

  const format::TensorInfo& cw = file->tensor(layout::kHeadClusterWeight);
  if (cw.rows != k_ || cw.cols != d_) {
    throw InputError(where + "'head.cluster_weight' must be [" + std::to_string(k_) + ", " + std::to_string(d_) + "]");
  }
  cluster_enc_ = cw.encoding;
  cluster_row_bytes_ = static_cast<size_t>(cw.row_bytes);
  cluster_weight_ = file->read_tensor(layout::kHeadClusterWeight);
  const Tensor bias = file->decode_tensor(layout::kHeadClusterBias);
  if (bias.numel() != k_) {
    throw InputError(where + "'head.cluster_bias' has " + std::to_string(bias.numel()) + " values, expected " +
                     std::to_string(k_));
  }
  cluster_bias_.assign(bias.data.begin(), bias.data.end());

  if (!(options_.p > 0.0) || options_.p > 1.0) {
    throw UsageError("head p must be in (0, 1], got " + std::to_string(options_.p));
  }
  if (options_.min_clusters < 1) throw UsageError("head min_clusters must be at least 1");
  if (options_.max_clusters == 0 || options_.max_clusters > k_) options_.max_clusters = k_;
  options_.min_clusters = std::min(options_.min_clusters, k_);
  if (options_.max_clusters < options_.min_clusters) {
    throw UsageError("head max_clusters (" + std::to_string(options_.max_clusters) + ") is below min_clusters (" +
                     std::to_string(options_.min_clusters) + ")");
  }
  if (options_.cache_rows < 0) throw UsageError("head cache rows must be >= 0 (0: the whole vocabulary)");
  const int64_t table_bytes = static_cast<int64_t>((row_token_.size() + offsets_.size() + cluster_bias_.size()) * 4 +
                                                   cluster_weight_.size());
  tables_resident_ = ResidentBytes(counter, table_bytes);
  cache_ = std::make_unique<RowCache>(file, std::vector<std::string>{layout::kClusteredHead},
                                      options_.cache_rows > 0 ? options_.cache_rows : v_, counter);
  stats_->clusters = k_;
  stats_->cache_rows = cache_->capacity();
  cluster_logit_.resize(static_cast<size_t>(k_));
  cluster_dot_.resize(static_cast<size_t>(k_));
  is_kept_.resize(static_cast<size_t>(k_));
}

int64_t TwoLevelHead::storage_bytes() const {
  return static_cast<int64_t>((row_token_.size() + offsets_.size() + cluster_bias_.size()) * 4 + cluster_weight_.size()) +
         cache_->capacity() * static_cast<int64_t>(cache_->entry_bytes());
}

void TwoLevelHead::apply(const float* x, float* logits, ThreadPool& pool) const {
  // Cluster probabilities in log space, in double. The cluster rows are one contiguous matrix.
  pool.parallel_for(0, k_, d_, [&](int64_t lo, int64_t hi) {
    format::dot_rows(&cluster_weight_[static_cast<size_t>(lo) * cluster_row_bytes_], cluster_row_bytes_, hi - lo, x, d_,
                     cluster_enc_.encoding, cluster_enc_.params, &cluster_dot_[static_cast<size_t>(lo)]);
  });
  double lmax = -INFINITY;
  for (int64_t c = 0; c < k_; ++c) {
    const float l = cluster_dot_[static_cast<size_t>(c)] + cluster_bias_[static_cast<size_t>(c)];
    cluster_logit_[static_cast<size_t>(c)] = l;
    lmax = std::max(lmax, static_cast<double>(l));
  }
  double sum = 0;
  for (double l : cluster_logit_) sum += std::exp(l - lmax);
  const double log_sum = std::log(sum);
  auto log_q = [&](int64_t c) { return cluster_logit_[static_cast<size_t>(c)] - lmax - log_sum; };

  order_.resize(static_cast<size_t>(k_));
  for (int64_t c = 0; c < k_; ++c) order_[static_cast<size_t>(c)] = c;
  std::sort(order_.begin(), order_.end(), [&](int64_t a, int64_t b) {
    const double la = cluster_logit_[static_cast<size_t>(a)], lb = cluster_logit_[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  });
  kept_.clear();
  std::fill(is_kept_.begin(), is_kept_.end(), uint8_t{0});
  const bool keep_all_mass = options_.p >= 1.0;  // no rounding of Σq can stop short of every cluster
  double kept_mass = 0;
  for (int64_t c : order_) {
    const auto kept = static_cast<int64_t>(kept_.size());
    if (kept >= options_.max_clusters) break;
    if (kept >= options_.min_clusters && !keep_all_mass && kept_mass >= options_.p) break;
    kept_.push_back(c);
    is_kept_[static_cast<size_t>(c)] = 1;
    kept_mass += std::exp(log_q(c));
  }

  // Exact logits of the kept clusters' tokens, read in ascending row order (each cluster's rows
  // are contiguous, so a cluster's misses coalesce into one read) and scored in parallel.
  const RowCacheCounters before = cache_->counters();
  std::vector<int64_t>& ascending = order_;  // order_ is not needed any more
  ascending.assign(kept_.begin(), kept_.end());
  std::sort(ascending.begin(), ascending.end());
  kept_rows_.clear();
  for (int64_t c : ascending) {
    for (int64_t row = offsets_[static_cast<size_t>(c)]; row < offsets_[static_cast<size_t>(c) + 1]; ++row) {
      kept_rows_.push_back(row);
    }
  }
  const auto scored = static_cast<int64_t>(kept_rows_.size());
  row_logit_.resize(kept_rows_.size());
  int64_t done = 0;
  cache_->visit_batches(kept_rows_.data(), scored, [&](const int64_t* rows, int64_t count) {
    cache_->resident_parts(rows, count, 0, row_ptrs_);
    pool.parallel_for(0, count, d_, [&](int64_t lo, int64_t hi) {
      format::dot_rows_gathered(row_ptrs_.data() + lo, hi - lo, x, d_, row_enc_.encoding, row_enc_.params,
                                &row_logit_[static_cast<size_t>(done + lo)]);
    });
    done += count;
  });
  double zmax = -INFINITY;
  for (int64_t i = 0; i < scored; ++i) {
    const float z = row_logit_[static_cast<size_t>(i)];
    logits[row_token_[static_cast<size_t>(kept_rows_[static_cast<size_t>(i)])]] = z;
    zmax = std::max(zmax, static_cast<double>(z));
  }

  if (static_cast<int64_t>(kept_.size()) < k_) {
    double z_sum = 0;  // Z / exp(zmax)
    for (int64_t c : ascending) {
      for (int32_t row = offsets_[static_cast<size_t>(c)]; row < offsets_[static_cast<size_t>(c) + 1]; ++row) {
        z_sum += std::exp(static_cast<double>(logits[row_token_[static_cast<size_t>(row)]]) - zmax);
      }
    }
    // log(Z / (1 - s)) with 1 - s = Σ_kept q > 0.
    const double log_scale = zmax + std::log(z_sum) - std::log(kept_mass);
    for (int64_t c = 0; c < k_; ++c) {
      if (is_kept_[static_cast<size_t>(c)]) continue;
      const int32_t begin = offsets_[static_cast<size_t>(c)], end = offsets_[static_cast<size_t>(c) + 1];
      const auto value = static_cast<float>(log_q(c) - std::log(static_cast<double>(end - begin)) + log_scale);
      for (int32_t row = begin; row < end; ++row) logits[row_token_[static_cast<size_t>(row)]] = value;
    }
  }
  stats_->calls += 1;
  stats_->clusters_kept += static_cast<int64_t>(kept_.size());
  stats_->rows_scored += scored;
  stats_->rows_read += cache_->counters().rows_read - before.rows_read;
}

std::function<std::unique_ptr<Head>()> make_two_level_head_provider(std::shared_ptr<const format::CompactFile> file,
                                                                    const TwoLevelHeadRuntimeOptions& options,
                                                                    std::shared_ptr<RuntimeStats> stats) {
  if (!file->find(layout::kClusteredHead)) return {};
  const std::optional<layout::ClusteredHeadMeta> meta =
      layout::ClusteredHeadMeta::from_json(file->metadata(), "'" + file->path() + "'");
  const layout::ClusteredHeadMeta settings = meta.value_or(layout::ClusteredHeadMeta{});
  TwoLevelHeadOptions o;
  o.p = options.p.value_or(settings.p.value_or(o.p));
  o.min_clusters = options.min_clusters.value_or(settings.min_clusters.value_or(o.min_clusters));
  o.max_clusters = options.max_clusters.value_or(settings.max_clusters.value_or(o.max_clusters));
  if (options.cache_rows && *options.cache_rows < 1) throw UsageError("head cache rows must be at least 1");
  o.cache_rows = options.cache_rows.value_or(0);
  return [file, o, stats]() -> std::unique_ptr<Head> {
    stats->head = std::make_shared<ClusteredHeadStats>();
    return std::make_unique<TwoLevelHead>(file, o, stats->residency.head, stats->head);
  };
}

}  // namespace rwkvlite
