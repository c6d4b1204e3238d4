// The "fold_embedding" pass: stores the embedding with the first layer norm already applied.
//
// The engine computes ln0(emb[token]) for every token before layer 0; that is a function of
// the token alone, so it can be precomputed once per vocabulary row. `emb.folded` [V, D]
// replaces `emb.weight` and the runtime skips ln0 (docs/compact-format.md section 6). Rows are
// computed with the engine's own kernels::layer_norm_rows and epsilon, so they are bit for bit
// what the engine would compute. The ln0 tensors stay in the file (small, and a reader that
// wants the raw embedding back has what it needs).
//
// Options: cache_rows (default 256, >= 0): how many embedding rows the runtime keeps in
// memory, written as file metadata "embedding_cache_rows".
//
// Report row: tensor emb.folded, shape [V, D], action "fold ln0", the embedding's encoding
// before and after, no metric (the rows are what the engine computes), seconds, extra {cache_rows}.
#pragma once

#include "compress/pipeline/option_reader.h"
#include "compress/pipeline/pass.h"

namespace rwkvlite {

// Config keys of a [[pass]] table of this type (defaults shown; docs/config.md):
//
//   type = "fold_embedding"    # emb.folded = ln0(emb.weight) per token, replaces emb.weight
//   cache_rows = 256           # embedding rows the runtime keeps; metadata      (>= 0)
//                              # "embedding_cache_rows"

struct FoldEmbeddingOptions {
  int64_t cache_rows = 256;

  static FoldEmbeddingOptions read(OptionReader& reader);
  void check() const;  // UsageError for options built in code
};

// LayerNorm of every row of `embedding` [V, D] with ln0's weight and bias [D]; InputError
// when the shapes disagree.
Tensor fold_layer_norm(const Tensor& embedding, const Tensor& ln_weight, const Tensor& ln_bias);

class FoldEmbeddingPass : public Pass {
 public:
  explicit FoldEmbeddingPass(FoldEmbeddingOptions options);

  // UsageError when emb.weight or blocks.0.ln0.* is missing (already folded?) or misshapen.
  void validate(const CompressedModel& model) const override;
  void plan(CompressPlan& plan) const override;
  std::vector<PassReportRow> run(PassContext& ctx) override;

 private:
  void replace_embedding(CompressedModel& model, Tensor folded_values) const;
  FoldEmbeddingOptions options_;
};

}  // namespace rwkvlite
