#include "compress/passes/fold_embedding_pass.h"

#include <chrono>
#include <limits>

#include "runtime/core/error.h"
#include "runtime/engine/kernels.h"
#include "runtime/format/layout.h"

namespace rwkvlite {

namespace {

constexpr const char* kEmbedding = layout::kEmbedding;
constexpr const char* kFolded = layout::kFoldedEmbedding;
constexpr const char* kLnWeight = layout::kLn0Weight;
constexpr const char* kLnBias = layout::kLn0Bias;

}  // namespace

FoldEmbeddingOptions FoldEmbeddingOptions::read(OptionReader& r) {
  FoldEmbeddingOptions o;
  o.cache_rows = r.get_int("cache_rows", o.cache_rows, 0, std::numeric_limits<int32_t>::max());
  return o;
}

void FoldEmbeddingOptions::check() const {
  if (cache_rows < 0) throw UsageError("fold_embedding: cache_rows must be >= 0");
}

Tensor fold_layer_norm(const Tensor& embedding, const Tensor& ln_weight, const Tensor& ln_bias) {
  if (embedding.rank() != 2) {
    throw InputError("fold_embedding: the embedding has shape " + shape_to_string(embedding.shape) + ", expected [V, D]");
  }
  const int64_t d = embedding.dim(1);
  if (ln_weight.numel() != d || ln_bias.numel() != d) {
    throw InputError("fold_embedding: ln0 weight " + shape_to_string(ln_weight.shape) + " and bias " +
                     shape_to_string(ln_bias.shape) + " do not match the embedding width " + std::to_string(d));
  }
  Tensor folded(embedding.shape);
  kernels::layer_norm_rows(embedding.data.data(), embedding.dim(0), d, ln_weight.data.data(), ln_bias.data.data(),
                           kernels::kLayerNormEps, folded.data.data());
  return folded;
}

FoldEmbeddingPass::FoldEmbeddingPass(FoldEmbeddingOptions options) : options_(options) { options_.check(); }

void FoldEmbeddingPass::validate(const CompressedModel& model) const {
  if (!model.has(kEmbedding)) {
    throw UsageError(std::string("fold_embedding: the model has no '") + kEmbedding + "'" +
                     (model.has(kFolded) ? " (it is folded already: is fold_embedding listed twice?)" : ""));
  }
  for (const char* name : {kLnWeight, kLnBias}) {
    if (!model.has(name)) throw UsageError(std::string("fold_embedding: the model has no '") + name + "'");
  }
  const Tensor& e = model.at(kEmbedding).values;
  if (e.rank() != 2 || model.at(kLnWeight).values.numel() != e.cols() || model.at(kLnBias).values.numel() != e.cols()) {
    throw UsageError("fold_embedding: '" + std::string(kEmbedding) + "' " + shape_to_string(e.shape) +
                     " does not match ln0 " + shape_to_string(model.at(kLnWeight).values.shape));
  }
}

// Puts `folded` (the values in a run, only the shape in a plan) in place of emb.weight, with
// its encoding (a quantize pass before this one chose it), and records the cache size.
void FoldEmbeddingPass::replace_embedding(CompressedModel& model, Tensor folded_values) const {
  StoredTensor folded;
  folded.name = kFolded;
  folded.values = std::move(folded_values);
  folded.encoding = model.at(kEmbedding).encoding;
  folded.row_addressable = true;  // the runtime reads one row per token
  model.put(std::move(folded), kEmbedding);
  model.remove(kEmbedding);
  model.file_metadata[layout::EmbeddingCacheMeta::kKey] = layout::EmbeddingCacheMeta{options_.cache_rows}.to_json();
}

void FoldEmbeddingPass::plan(CompressPlan& plan) const {
  Tensor folded;
  folded.shape = plan.model.at(kEmbedding).values.shape;
  replace_embedding(plan.model, std::move(folded));
}

std::vector<PassReportRow> FoldEmbeddingPass::run(PassContext& ctx) {
  validate(ctx.model);
  if (ctx.on_start) ctx.on_start(1);
  const auto t0 = std::chrono::steady_clock::now();
  CompressedModel& model = ctx.model;
  const StoredTensor& emb = model.at(kEmbedding);
  PassReportRow row;
  row.tensor = kFolded;
  row.shape = emb.values.shape;
  row.encoding_before = row.encoding_after = emb.encoding;
  row.action = "fold ln0";
  row.bytes_before = row.bytes_after = emb.stored_bytes();
  replace_embedding(model, fold_layer_norm(emb.values, model.at(kLnWeight).values, model.at(kLnBias).values));
  row.extra["cache_rows"] = options_.cache_rows;
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (ctx.on_row) ctx.on_row(row);
  return {row};
}

}  // namespace rwkvlite
