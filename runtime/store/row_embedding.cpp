#include "runtime/store/row_embedding.h"

#include "runtime/core/error.h"
#include "runtime/format/codec.h"
#include "runtime/format/layout.h"

namespace rwkvlite {
namespace {

// Embedding rows kept in their stored encoding, decoded on lookup.
class EncodedEmbedding final : public Embedding {
 public:
  EncodedEmbedding(int64_t vocab, int64_t d, format::EncodingSpec enc, std::vector<uint8_t> bytes,
                   std::shared_ptr<ResidencyCounter> counter)
      : vocab_(vocab),
        d_(d),
        enc_(enc),
        row_bytes_(format::encoded_row_bytes(enc.encoding, d, enc.params)),
        bytes_(std::move(bytes)),
        resident_(std::move(counter), static_cast<int64_t>(bytes_.size())) {}
  int64_t vocab_size() const override { return vocab_; }
  int64_t n_embd() const override { return d_; }
  void lookup(int32_t token, float* out) const override {
    format::decode_row(&bytes_[static_cast<size_t>(token) * row_bytes_], d_, enc_.encoding, enc_.params, out);
  }
  int64_t storage_bytes() const override { return static_cast<int64_t>(bytes_.size()); }

 private:
  int64_t vocab_, d_;
  format::EncodingSpec enc_;
  size_t row_bytes_;
  std::vector<uint8_t> bytes_;
  ResidentBytes resident_;
};

}  // namespace

RowEmbedding::RowEmbedding(std::shared_ptr<const format::CompactFile> file, const std::string& tensor,
                           int64_t cache_rows, std::shared_ptr<ResidencyCounter> counter,
                           std::shared_ptr<RowEmbeddingStats> stats)
    : folded_(tensor == layout::kFoldedEmbedding), stats_(std::move(stats)) {
  const format::TensorInfo& t = file->tensor(tensor);
  if (t.shape.size() != 2) throw InputError("'" + file->path() + "': '" + tensor + "' must be [V, D]");
  v_ = t.rows;
  d_ = t.cols;
  enc_ = t.encoding;
  cache_ = std::make_unique<RowCache>(file, std::vector<std::string>{tensor}, cache_rows, std::move(counter));
  stats_->cache_rows = cache_->capacity();
  stats_->folded = folded_;
}

void RowEmbedding::lookup(int32_t token, float* out) const {
  const int64_t row = token;
  const int64_t before = cache_->counters().rows_read;
  cache_->visit(&row, 1, [&](int64_t, const uint8_t* const* parts) { format::decode_row(parts[0], d_, enc_, out); });
  stats_->lookups += 1;
  stats_->rows_read += cache_->counters().rows_read - before;
}

std::function<std::unique_ptr<Embedding>()> make_embedding_provider(std::shared_ptr<const format::CompactFile> file,
                                                                    std::optional<int64_t> cache_rows,
                                                                    std::shared_ptr<RuntimeStats> stats) {
  if (cache_rows && *cache_rows < 1) throw UsageError("embedding cache rows must be at least 1");
  if (!cache_rows) {
    const std::optional<layout::EmbeddingCacheMeta> meta =
        layout::EmbeddingCacheMeta::from_json(file->metadata(), "'" + file->path() + "'");
    if (meta) cache_rows = meta->cache_rows;
  }
  const bool folded = file->find(layout::kFoldedEmbedding) != nullptr;
  return [file, cache_rows, stats, folded]() -> std::unique_ptr<Embedding> {
    const std::string name = folded ? layout::kFoldedEmbedding : layout::kEmbedding;
    const format::TensorInfo& t = file->tensor(name);
    if (folded || cache_rows) {
      stats->embedding = std::make_shared<RowEmbeddingStats>();
      return std::make_unique<RowEmbedding>(file, name, cache_rows.value_or(t.rows), stats->residency.embedding,
                                            stats->embedding);
    }
    return std::make_unique<EncodedEmbedding>(t.rows, t.cols, t.encoding, file->read_tensor(name),
                                              stats->residency.embedding);
  };
}

}  // namespace rwkvlite
