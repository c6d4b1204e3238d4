#include "runtime/store/encoded_projection.h"

#include "runtime/core/error.h"
#include "runtime/engine/thread_pool.h"
#include "runtime/format/codec.h"
#include "runtime/format/layout.h"

namespace rwkvlite {
namespace {

// The residency part a provided matrix belongs to.
std::shared_ptr<ResidencyCounter> part_counter(const ResidencyByPart& parts, const std::string& name) {
  if (layout::is_head_tensor(name)) return parts.head;
  if (layout::is_channel_mix_matrix(name)) return parts.ffn;
  return parts.other;
}

}  // namespace

EncodedProjection::EncodedProjection(int64_t rows, int64_t cols, format::EncodingSpec encoding,
                                     std::vector<uint8_t> bytes, std::shared_ptr<ResidencyCounter> counter)
    : rows_(rows),
      cols_(cols),
      encoding_(encoding),
      row_bytes_(format::encoded_row_bytes(encoding.encoding, cols, encoding.params)),
      bytes_(std::move(bytes)),
      resident_(std::move(counter), static_cast<int64_t>(bytes_.size())) {
  if (bytes_.size() != row_bytes_ * static_cast<size_t>(rows)) {
    throw InputError("encoded matrix of " + std::to_string(rows) + " x " + std::to_string(cols) + " has " +
                     std::to_string(bytes_.size()) + " bytes, expected " + std::to_string(row_bytes_ * rows));
  }
}

void apply_encoded_rows(const uint8_t* bytes, size_t row_bytes, int64_t rows, int64_t cols,
                        const format::EncodingSpec& encoding, const float* x, float* y, ThreadPool& pool) {
  pool.parallel_for(0, rows, cols, [&](int64_t lo, int64_t hi) {
    format::dot_rows(bytes + static_cast<size_t>(lo) * row_bytes, row_bytes, hi - lo, x, cols, encoding.encoding,
                     encoding.params, y + lo);
  });
}

void apply_encoded_rows_batch(const uint8_t* bytes, size_t row_bytes, int64_t rows, int64_t cols,
                              const format::EncodingSpec& encoding, const float* x, int64_t n, float* y,
                              ThreadPool& pool) {
  if (n == 1) {
    apply_encoded_rows(bytes, row_bytes, rows, cols, encoding, x, y, pool);
    return;
  }
  pool.parallel_for(0, rows, cols * n, [&](int64_t lo, int64_t hi) {
    format::dot_rows_batch(bytes + static_cast<size_t>(lo) * row_bytes, row_bytes, hi - lo, x, n, cols,
                           encoding.encoding, encoding.params, y + lo, rows);
  });
}

void EncodedProjection::apply(const float* x, float* y, ThreadPool& pool) const {
  apply_encoded_rows(bytes_.data(), row_bytes_, rows_, cols_, encoding_, x, y, pool);
}

void EncodedProjection::apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const {
  apply_encoded_rows_batch(bytes_.data(), row_bytes_, rows_, cols_, encoding_, x, n, y, pool);
}

LowRankProjection::LowRankProjection(std::unique_ptr<Projection> a, std::unique_ptr<Projection> b)
    : a_(std::move(a)), b_(std::move(b)) {
  if (a_->rows() != b_->cols()) {
    throw InputError("low-rank factors do not chain: A is " + std::to_string(a_->rows()) + " x " +
                     std::to_string(a_->cols()) + ", B is " + std::to_string(b_->rows()) + " x " + std::to_string(b_->cols()));
  }
}

void LowRankProjection::apply(const float* x, float* y, ThreadPool& pool) const {
  // The rank-r intermediate is small; a thread-local buffer avoids an allocation per call.
  thread_local std::vector<float> mid;
  mid.resize(static_cast<size_t>(a_->rows()));
  a_->apply(x, mid.data(), pool);
  b_->apply(mid.data(), y, pool);
}

void LowRankProjection::apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const {
  thread_local std::vector<float> mid;
  mid.resize(static_cast<size_t>(a_->rows() * n));
  a_->apply_batch(x, n, mid.data(), pool);
  b_->apply_batch(mid.data(), n, y, pool);
}

std::unique_ptr<Projection> read_encoded_projection(const format::CompactFile& file, const std::string& name,
                                                    int64_t rows, int64_t cols,
                                                    std::shared_ptr<ResidencyCounter> counter) {
  const format::TensorInfo& t = file.tensor(name);
  if (t.rows != rows || t.cols != cols) {
    throw InputError("'" + name + "' is stored as " + std::to_string(t.rows) + " x " + std::to_string(t.cols) +
                     ", the model needs " + std::to_string(rows) + " x " + std::to_string(cols));
  }
  return std::make_unique<EncodedProjection>(rows, cols, t.encoding, file.read_tensor(name), std::move(counter));
}

std::function<std::unique_ptr<Projection>(const std::string& name, int64_t rows, int64_t cols)>
make_projection_provider(std::shared_ptr<const format::CompactFile> file, const ResidencyByPart& parts,
                         std::shared_ptr<LayerStream> stream) {
  return [file, parts, stream](const std::string& name, int64_t rows, int64_t cols) -> std::unique_ptr<Projection> {
    auto encoded = [&](const std::string& tensor, int64_t r, int64_t c) -> std::unique_ptr<Projection> {
      if (stream && stream->streams(tensor)) {
        const format::TensorInfo& t = file->tensor(tensor);
        if (t.rows != r || t.cols != c)
          throw InputError("'" + tensor + "' is stored as " + std::to_string(t.rows) + " x " + std::to_string(t.cols) +
                           ", the model needs " + std::to_string(r) + " x " + std::to_string(c));
        return std::make_unique<StreamedProjection>(stream, stream->handle(tensor), r, c, t.encoding);
      }
      return read_encoded_projection(*file, tensor, r, c, part_counter(parts, tensor));
    };
    if (layout::is_lora_factor(name)) {
      const std::string rows_name = layout::lora_rows(name);
      if (!file->find(rows_name)) throw InputError("'" + file->path() + "' has neither '" + name + "' nor '" + rows_name + "'");
      return encoded(rows_name, rows, cols);
    }
    const std::string base = layout::matrix_base(name);
    if (file->find(layout::lowrank_a(base))) {
      const format::TensorInfo& a = file->tensor(layout::lowrank_a(base));
      return std::make_unique<LowRankProjection>(encoded(layout::lowrank_a(base), a.rows, cols),
                                                 encoded(layout::lowrank_b(base), rows, a.rows));
    }
    if (!file->find(name)) throw InputError("'" + file->path() + "' has neither '" + name + "' nor its low-rank factors");
    return encoded(name, rows, cols);
  };
}

}  // namespace rwkvlite
