#include "runtime/store/row_embedding.h"

#include "runtime/core/error.h"
#include "runtime/format/codec.h"

namespace rwkvlite {

RowEmbedding::RowEmbedding(std::shared_ptr<const format::CompactFile> file, const std::string& tensor,
                           int64_t cache_rows, std::shared_ptr<ResidencyCounter> counter,
                           std::shared_ptr<RowEmbeddingStats> stats)
    : folded_(tensor == "emb.folded"), stats_(std::move(stats)) {
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

}  // namespace rwkvlite
