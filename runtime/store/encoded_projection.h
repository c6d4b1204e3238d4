// Projections over compact-file encodings: a matrix kept in its stored encoding (f32, f16,
// bf16, i8, i4gG) and multiplied row by row with the format's fused dot kernels, never
// dequantized as a whole; and a low-rank product of two such projections. Also the matrix
// provider that load_compact_engine gives the weight builder.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine/projection.h"
#include "runtime/format/compact_reader.h"
#include "runtime/format/encoding.h"
#include "runtime/store/layer_stream.h"
#include "runtime/store/residency.h"
#include "runtime/store/runtime_stats.h"

namespace rwkvlite {

// y = W x for `rows` encoded rows of row_bytes each (W in `encoding`, cols wide): each output
// row one fused dot product computed by one thread, so the result does not depend on the
// thread count. The batch form unpacks each row once for all n inputs (x: n x cols, y: n x rows).
void apply_encoded_rows(const uint8_t* bytes, size_t row_bytes, int64_t rows, int64_t cols,
                        const format::EncodingSpec& encoding, const float* x, float* y, ThreadPool& pool);
void apply_encoded_rows_batch(const uint8_t* bytes, size_t row_bytes, int64_t rows, int64_t cols,
                              const format::EncodingSpec& encoding, const float* x, int64_t n, float* y,
                              ThreadPool& pool);

class EncodedProjection final : public Projection {
 public:
  // `bytes` holds rows x encoded_row_bytes(encoding, cols), as read from the file.
  EncodedProjection(int64_t rows, int64_t cols, format::EncodingSpec encoding, std::vector<uint8_t> bytes,
                    std::shared_ptr<ResidencyCounter> counter);
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  void apply(const float* x, float* y, ThreadPool& pool) const override;
  // Each stored row is unpacked once per batch and reused for every input.
  void apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const override;
  int64_t storage_bytes() const override { return static_cast<int64_t>(bytes_.size()); }

 private:
  int64_t rows_, cols_;
  format::EncodingSpec encoding_;
  size_t row_bytes_;
  std::vector<uint8_t> bytes_;
  ResidentBytes resident_;
};

// W ~= B · A: y = B (A x), with A r x in and B out x r.
class LowRankProjection final : public Projection {
 public:
  LowRankProjection(std::unique_ptr<Projection> a, std::unique_ptr<Projection> b);
  int64_t rows() const override { return b_->rows(); }
  int64_t cols() const override { return a_->cols(); }
  void apply(const float* x, float* y, ThreadPool& pool) const override;
  void apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const override;
  int64_t storage_bytes() const override { return a_->storage_bytes() + b_->storage_bytes(); }
  int64_t rank() const { return a_->rows(); }

 private:
  std::unique_ptr<Projection> a_, b_;
};

// Tensor `name` of `file` as an EncodedProjection, its bytes registered with `counter`;
// InputError unless it is stored as rows x cols.
std::unique_ptr<Projection> read_encoded_projection(const format::CompactFile& file, const std::string& name,
                                                    int64_t rows, int64_t cols,
                                                    std::shared_ptr<ResidencyCounter> counter);

// The matrix provider of a compact file (WeightProviders::matrix, engine/build_weights.h):
// <base>.weight, or LowRankProjection of <base>.lr_a and <base>.lr_b when the file has them,
// kept encoded. Bytes count towards parts.head for head.*, parts.ffn for the channel-mix key
// and value, else parts.other. Tensors `stream` streams become StreamedProjections, holding no
// bytes of their own. InputError when the file has neither form or a shape differs.
std::function<std::unique_ptr<Projection>(const std::string& name, int64_t rows, int64_t cols)>
make_projection_provider(std::shared_ptr<const format::CompactFile> file, const ResidencyByPart& parts,
                         std::shared_ptr<LayerStream> stream = nullptr);

}  // namespace rwkvlite
