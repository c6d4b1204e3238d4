// The fold_embedding pass: emb.folded rows are exactly what the engine computes for ln0, so an
// engine that reads them and skips ln0 gives bit-identical logits.
#include <cstring>

#include "converters/rwkvcpp_file.h"
#include "runtime/core/error.h"
#include "runtime/engine/build_weights.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/kernels.h"
#include "compress/passes/fold_embedding_pass.h"
#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/config.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

// The folded table served as the engine's embedding, flagged so the engine skips ln0.
class FoldedEmbedding final : public Embedding {
 public:
  explicit FoldedEmbedding(const Tensor& t) : table_(t) {}
  int64_t vocab_size() const override { return table_.dim(0); }
  int64_t n_embd() const override { return table_.dim(1); }
  void lookup(int32_t token, float* out) const override {
    std::memcpy(out, table_.data.data() + static_cast<size_t>(token) * n_embd(), sizeof(float) * n_embd());
  }
  int64_t storage_bytes() const override { return table_.numel() * 4; }
  bool includes_ln0() const override { return true; }

 private:
  Tensor table_;
};

PipelineConfig config_with(const std::string& pass_toml) {
  return parse_pipeline_config("[[pass]]\n" + pass_toml, "test.toml", builtin_passes());
}

}  // namespace

TEST_CASE("fold_embedding writes ln0(emb) bit for bit and the engine agrees", "[fold]") {
  for (const char* stem : {"5v2-730K", "7v0-834K"}) {
    const std::string path = tiny_model_path(stem, "FP32");
    RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
    INFO(stem);
    const Model model = read_rwkvcpp(path);
    CompressedModel cm = CompressedModel::from_dense(model);
    PipelineConfig cfg = config_with("type = \"fold_embedding\"\ncache_rows = 100\n");
    PassContext ctx{cm, nullptr, 0, 2, {}, {}};
    cfg.passes[0].pass->validate(cm);
    const auto rows = cfg.passes[0].pass->run(ctx);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].tensor == "emb.folded");
    CHECK(!cm.has("emb.weight"));
    CHECK(cm.has("blocks.0.ln0.weight"));
    CHECK(cm.has("blocks.0.ln0.bias"));
    const StoredTensor& folded = cm.at("emb.folded");
    CHECK(folded.row_addressable);
    CHECK(folded.values.shape == model.at("emb.weight").shape);
    CHECK(cm.file_metadata["embedding_cache_rows"] == 100);
    // emb.folded takes emb.weight's place: first tensor.
    CHECK(cm.tensors().front().name == "emb.folded");

    // Row by row, exactly the engine's kernel on the raw row.
    const int64_t d = model.dims.n_embd;
    std::vector<float> expect(static_cast<size_t>(d));
    for (int64_t t = 0; t < model.dims.n_vocab; t += 37) {
      kernels::layer_norm_rows(model.at("emb.weight").data.data() + t * d, 1, d, model.at("blocks.0.ln0.weight").data.data(),
                               model.at("blocks.0.ln0.bias").data.data(), kernels::kLayerNormEps, expect.data());
      REQUIRE(std::memcmp(expect.data(), folded.values.data.data() + t * d, sizeof(float) * d) == 0);
    }

    // An engine reading folded rows (and so skipping ln0) gives the dense engine's logits exactly.
    Engine dense(model, 1);
    WeightProviders providers;
    providers.embedding = [&] { return std::make_unique<FoldedEmbedding>(folded.values); };
    EngineOptions eo;
    eo.threads = 1;
    Engine with_folded(build_weights(model, providers), eo);
    State a = dense.new_state(), b = with_folded.new_state();
    std::vector<float> la(static_cast<size_t>(dense.vocab_size())), lb(la.size());
    for (unsigned char c : std::string("To be, or not to be")) {
      dense.eval_token(c, a, la.data());
      with_folded.eval_token(c, b, lb.data());
      REQUIRE(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("fold_embedding rejects bad options and a model without an embedding", "[fold]") {
  CHECK_THROWS_AS(config_with("type = \"fold_embedding\"\ncache_rows = -1\n"), UsageError);
  CHECK_THROWS_AS(config_with("type = \"fold_embedding\"\ncache_row = 5\n"), UsageError);
  CHECK_THROWS_AS(config_with("type = \"fold_embedding\"\ncache_rows = \"many\"\n"), UsageError);
  const std::string path = tiny_model_path("5v2-730K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  CompressedModel cm = CompressedModel::from_dense(read_rwkvcpp(path));
  PipelineConfig cfg = config_with("type = \"fold_embedding\"\n");
  PassContext ctx{cm, nullptr, 0, 1, {}, {}};
  cfg.passes[0].pass->run(ctx);
  // Twice: the second finds no emb.weight and says why.
  CHECK_THROWS_AS(cfg.passes[0].pass->validate(cm), UsageError);
  CompressedModel broken = CompressedModel::from_dense(read_rwkvcpp(path));
  broken.remove("blocks.0.ln0.bias");
  CHECK_THROWS_AS(cfg.passes[0].pass->validate(broken), UsageError);
}
