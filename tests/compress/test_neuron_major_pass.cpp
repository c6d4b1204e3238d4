// The neuron_major pass on a real tiny model: value matrices transposed exactly, flags set,
// clear errors for what it cannot apply to.
#include "converters/rwkvcpp_file.h"
#include "runtime/core/error.h"
#include "compress/passes/neuron_major_pass.h"
#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/config.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

std::unique_ptr<Pass> neuron_major_from(const std::string& options) {
  PipelineConfig c = parse_pipeline_config("[[pass]]\ntype = \"neuron_major\"\n" + options, "test.toml", builtin_passes());
  REQUIRE(c.passes.size() == 1);
  return std::move(c.passes[0].pass);
}

std::vector<PassReportRow> run_pass(Pass& pass, CompressedModel& model) {
  PassContext ctx{model, nullptr, 1, 1, {}, {}};
  return pass.run(ctx);
}

}  // namespace

TEST_CASE("neuron_major stores every channel-mix value transposed, after the key", "[neuron_major]") {
  const Model dense = read_rwkvcpp(tiny_model_path("5v2-730K", "FP32"));
  CompressedModel model = CompressedModel::from_dense(dense);
  model.at("blocks.1.ffn.value.weight").encoding = "f16";  // the encoding travels with the values
  auto pass = neuron_major_from("");
  pass->validate(model);
  CompressPlan plan{model.shapes_only(), {}, 0, {}};
  pass->plan(plan);
  const auto rows = run_pass(*pass, model);
  REQUIRE(plan.model.names() == model.names());
  for (const auto& t : model.tensors()) {
    CHECK(plan.model.at(t.name).values.shape == t.values.shape);
    CHECK(plan.model.at(t.name).encoding == t.encoding);
    CHECK(plan.model.at(t.name).row_addressable == t.row_addressable);
  }
  REQUIRE(rows.size() == static_cast<size_t>(dense.dims.n_layer));
  for (int64_t l = 0; l < dense.dims.n_layer; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".ffn.";
    INFO(p);
    CHECK_FALSE(model.has(p + "value.weight"));
    REQUIRE(model.has(p + "value.neurons"));
    const Tensor& value = dense.at(p + "value.weight");  // [D, F]
    const StoredTensor& neurons = model.at(p + "value.neurons");
    const int64_t D = value.dim(0), F = value.dim(1);
    REQUIRE(neurons.values.shape == std::vector<int64_t>{F, D});
    for (int64_t j = 0; j < F; ++j) {
      for (int64_t d = 0; d < D; ++d) REQUIRE(neurons.values.data[j * D + d] == value.data[d * F + j]);
    }
    CHECK(neurons.row_addressable);
    CHECK(model.at(p + "key.weight").row_addressable);
    CHECK(neurons.encoding == (l == 1 ? "f16" : "f32"));
    // Placed right after the key.
    const auto names = model.names();
    const auto key_at = std::find(names.begin(), names.end(), p + "key.weight");
    REQUIRE(key_at + 1 != names.end());
    CHECK(*(key_at + 1) == p + "value.neurons");
    CHECK(rows[static_cast<size_t>(l)].tensor == p + "value.neurons");
    CHECK(rows[static_cast<size_t>(l)].bytes_before == rows[static_cast<size_t>(l)].bytes_after);
  }
  CHECK(rows[1].bytes_after == 2 * dense.at("blocks.1.ffn.value.weight").numel());
  CHECK(model.tensors().size() == dense.tensors.size());
}

TEST_CASE("neuron_major ignore patterns leave layers dense", "[neuron_major]") {
  const Model dense = read_rwkvcpp(tiny_model_path("7v0-834K", "FP32"));
  CompressedModel model = CompressedModel::from_dense(dense);
  auto pass = neuron_major_from("ignore = [\"blocks.0.**\"]\n");
  const auto rows = run_pass(*pass, model);
  CHECK(rows.size() == static_cast<size_t>(dense.dims.n_layer - 1));
  CHECK(model.has("blocks.0.ffn.value.weight"));
  CHECK_FALSE(model.at("blocks.0.ffn.key.weight").row_addressable);
  CHECK(model.has("blocks.1.ffn.value.neurons"));
}

TEST_CASE("neuron_major rejects what it cannot apply to", "[neuron_major]") {
  const Model dense = read_rwkvcpp(tiny_model_path("5v2-730K", "FP32"));
  auto pass = neuron_major_from("");

  SECTION("unknown option") {
    CHECK_THROWS_AS(neuron_major_from("ignorre = []\n"), UsageError);
    CHECK_THROWS_AS(neuron_major_from("ignore = [\"blocks.[0]\"]\n"), UsageError);
  }
  SECTION("every layer ignored") {
    CompressedModel model = CompressedModel::from_dense(dense);
    CHECK_THROWS_AS(neuron_major_from("ignore = [\"**\"]\n")->validate(model), UsageError);
  }
  SECTION("missing value") {
    CompressedModel model = CompressedModel::from_dense(dense);
    model.remove("blocks.2.ffn.value.weight");
    CHECK_THROWS_WITH(pass->validate(model), Catch::Contains("no 'blocks.2.ffn.value.weight'"));
  }
  SECTION("low-ranked key") {
    CompressedModel model = CompressedModel::from_dense(dense);
    model.put(StoredTensor{"blocks.0.ffn.key.lr_a", Tensor({2, 2}), "f32", false, {}}, "blocks.0.ffn.key.weight");
    model.remove("blocks.0.ffn.key.weight");
    CHECK_THROWS_WITH(pass->validate(model), Catch::Contains("low-ranked"));
  }
  SECTION("wrong shape") {
    CompressedModel model = CompressedModel::from_dense(dense);
    model.at("blocks.1.ffn.value.weight").values = Tensor({3, 5});
    CHECK_THROWS_AS(pass->validate(model), UsageError);
  }
  SECTION("applied twice") {
    CompressedModel model = CompressedModel::from_dense(dense);
    run_pass(*pass, model);
    CHECK_THROWS_WITH(run_pass(*pass, model), Catch::Contains("already neuron-major"));
  }
}

// This executable does not link the LibTorch trainer, like a TORCH=OFF build: the predictor
// pass of the sparse-FFN configs must refuse clearly before any work.
TEST_CASE("sparsity_predictor without a trainer is a usage error", "[neuron_major]") {
  PipelineConfig c = parse_pipeline_config("[[pass]]\ntype = \"sparsity_predictor\"\n", "test.toml", builtin_passes());
  const Model dense = read_rwkvcpp(tiny_model_path("5v2-730K", "FP32"));
  const CompressedModel model = CompressedModel::from_dense(dense);
  CHECK_THROWS_WITH(c.passes[0].pass->validate(model), Catch::Contains("built without LibTorch"));
  CHECK_THROWS_AS(parse_pipeline_config("[[pass]]\ntype = \"sparsity_predictor\"\nrank = 0\n", "test.toml", builtin_passes()), UsageError);
  CHECK_THROWS_AS(parse_pipeline_config("[[pass]]\ntype = \"sparsity_predictor\"\nrecal = 0.9\n", "test.toml", builtin_passes()), UsageError);
}
