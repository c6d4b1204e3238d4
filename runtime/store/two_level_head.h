// A two-level (clustered) output head: score clusters first, then only the likely clusters'
// tokens exactly.
//
//   q = softmax(cluster_weight · x + cluster_bias)             cluster probabilities
//   kept = clusters in descending q (ties: lower index) until Σ q ≥ p, at least min_clusters,
//          at most max_clusters (p ≥ 1 keeps every cluster)
//   kept token t:                 logit z_t = head row · x       (rows read through a RowCache)
//   token of skipped cluster c:   logit log(q_c / |c|) + log(Z / (1 - s))
// with Z = Σ_kept exp(z_t) and s = Σ_skipped q_c. softmax(logits) is then a proper distribution:
// (1 - s) exp(z_t) / Z for kept tokens and q_c / |c| for skipped ones, so every token keeps a
// finite probability. With every cluster kept the logits are the dense head's, bit for bit (same
// dot kernel per row). 1 - s is computed as Σ_kept q (at least the top cluster's q ≥ 1/K), and
// log q_c in log space, so nothing degenerates when s → 1 or a q_c underflows.
//
// Tensors (docs/compact-format.md, section 6): head.clustered [V, D] (row-addressable),
// head.row_token i32 [V], head.cluster_offsets i32 [K+1], head.cluster_weight [K, D],
// head.cluster_bias [K] (names in runtime/format/layout.h).
//
// make_two_level_head_provider is how load_compact_engine builds one for a clustered file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "runtime/engine/head.h"
#include "runtime/format/compact_reader.h"
#include "runtime/store/row_cache.h"
#include "runtime/store/runtime_stats.h"

namespace rwkvlite {

struct TwoLevelHeadOptions {
  double p = 0.95;
  int64_t min_clusters = 1;
  int64_t max_clusters = 0;  // 0: K
  int64_t cache_rows = 0;    // 0: V (rows are still read only when first needed)
};

class TwoLevelHead final : public Head {
 public:
  // Validates every table (InputError naming the problem) and the options (UsageError).
  TwoLevelHead(std::shared_ptr<const format::CompactFile> file, TwoLevelHeadOptions options,
               std::shared_ptr<ResidencyCounter> counter, std::shared_ptr<ClusteredHeadStats> stats);

  int64_t vocab_size() const override { return v_; }
  int64_t n_embd() const override { return d_; }
  void apply(const float* x, float* logits, ThreadPool& pool) const override;
  int64_t storage_bytes() const override;

  int64_t clusters() const { return k_; }
  // The clusters kept by the last apply(), in the order they were chosen (descending q).
  const std::vector<int64_t>& last_kept() const { return kept_; }

 private:
  int64_t v_ = 0, d_ = 0, k_ = 0;
  TwoLevelHeadOptions options_;
  format::EncodingSpec row_enc_, cluster_enc_;
  std::vector<int32_t> row_token_, offsets_;
  std::vector<uint8_t> cluster_weight_;  // K encoded rows
  size_t cluster_row_bytes_ = 0;
  std::vector<float> cluster_bias_;
  ResidentBytes tables_resident_;
  std::unique_ptr<RowCache> cache_;
  std::shared_ptr<ClusteredHeadStats> stats_;
  mutable std::vector<int64_t> kept_, order_;
  mutable std::vector<double> cluster_logit_;
  mutable std::vector<float> cluster_dot_, row_logit_;
  mutable std::vector<int64_t> kept_rows_;  // rows of the kept clusters, ascending
  mutable std::vector<const uint8_t*> row_ptrs_;  // the current batch's resident rows
  mutable std::vector<uint8_t> is_kept_;
};

// The runtime's settings of the two-level head (RuntimeOptions, store/compact_model.h); each
// overrides the file's metadata "clustered_head", whose unset values take the defaults of
// TwoLevelHeadOptions.
struct TwoLevelHeadRuntimeOptions {
  std::optional<double> p;
  std::optional<int64_t> min_clusters, max_clusters;
  std::optional<int64_t> cache_rows;  // >= 1
};

// The head provider of a compact file (WeightProviders::head): a TwoLevelHead when the file has
// head.clustered, its stats in stats->head and its bytes under stats->residency.head; an empty
// function otherwise (the head then loads as a projection). Checks the metadata now
// (InputError) and a cache_rows override below 1 (UsageError).
std::function<std::unique_ptr<Head>()> make_two_level_head_provider(std::shared_ptr<const format::CompactFile> file,
                                                                    const TwoLevelHeadRuntimeOptions& options,
                                                                    std::shared_ptr<RuntimeStats> stats);

}  // namespace rwkvlite
