// Token embedding rows read on demand from a compact file through a bounded RowCache, so a
// large vocabulary need not be resident: only the rows of recently seen tokens are.
//
// Reads `emb.folded` (rows with blocks.0.ln0 already applied; includes_ln0() is then true and
// the engine skips ln0) or `emb.weight`. load_compact_engine uses it for every folded file and
// for unfolded files when a cache size is set (metadata `embedding_cache_rows` or the
// --embedding-cache-rows override); otherwise the whole table stays resident as before
// (make_embedding_provider makes that choice).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "runtime/engine/embedding.h"
#include "runtime/format/compact_reader.h"
#include "runtime/store/row_cache.h"
#include "runtime/store/runtime_stats.h"

namespace rwkvlite {

class RowEmbedding final : public Embedding {
 public:
  // `tensor`: emb.folded or emb.weight (layout::kFoldedEmbedding, kEmbedding), [V, D]. cache_rows >= 1 (clamped to V).
  RowEmbedding(std::shared_ptr<const format::CompactFile> file, const std::string& tensor, int64_t cache_rows,
               std::shared_ptr<ResidencyCounter> counter, std::shared_ptr<RowEmbeddingStats> stats);

  int64_t vocab_size() const override { return v_; }
  int64_t n_embd() const override { return d_; }
  void lookup(int32_t token, float* out) const override;
  int64_t storage_bytes() const override { return cache_->capacity() * static_cast<int64_t>(cache_->entry_bytes()); }
  bool includes_ln0() const override { return folded_; }

 private:
  int64_t v_ = 0, d_ = 0;
  bool folded_ = false;
  format::EncodingSpec enc_;
  std::unique_ptr<RowCache> cache_;  // mutable state behind a const interface
  std::shared_ptr<RowEmbeddingStats> stats_;
};

// The embedding provider of a compact file (WeightProviders::embedding): a RowEmbedding of
// emb.folded, or of emb.weight when a cache size is set (`cache_rows`, else metadata
// "embedding_cache_rows"), its stats in stats->embedding; else the whole emb.weight resident in
// its stored encoding. Bytes count under stats->residency.embedding. Checks the cache size now:
// UsageError for `cache_rows` below 1, InputError for a bad metadata value.
std::function<std::unique_ptr<Embedding>()> make_embedding_provider(std::shared_ptr<const format::CompactFile> file,
                                                                    std::optional<int64_t> cache_rows,
                                                                    std::shared_ptr<RuntimeStats> stats);

}  // namespace rwkvlite
