// runtime/format/layout: the names the passes write and the store reads, the predicates that
// classify them (checked against the regular expressions they replaced), and the metadata
// structs' JSON (round trips, and the InputErrors of hostile values).
#include <catch2/catch.hpp>

#include <regex>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/format/layout.h"

using namespace rwkvlite;
using nlohmann::json;

TEST_CASE("layout builds the channel-mix, low-rank, head and embedding names", "[layout]") {
  CHECK(layout::block_prefix(3) == "blocks.3.");
  CHECK(layout::ffn_prefix(3) == "blocks.3.ffn.");
  CHECK(layout::ffn_tensor_name(3, "key") == "blocks.3.ffn.key");
  CHECK(layout::ffn_key_weight(0) == "blocks.0.ffn.key.weight");
  CHECK(layout::ffn_value_weight(11) == "blocks.11.ffn.value.weight");
  CHECK(layout::ffn_value_neurons(2) == "blocks.2.ffn.value.neurons");
  CHECK(layout::ffn_predictor_down(2) == "blocks.2.ffn.predictor.down");
  CHECK(layout::ffn_predictor_up(2) == "blocks.2.ffn.predictor.up");
  CHECK(layout::ffn_key_sign(2) == "blocks.2.ffn.key.sign");
  CHECK(layout::lowrank_a("blocks.1.att.key") == "blocks.1.att.key.lr_a");
  CHECK(layout::lowrank_b("blocks.1.att.key") == "blocks.1.att.key.lr_b");
  CHECK(layout::matrix_weight("head") == "head.weight");
  CHECK(layout::matrix_base("blocks.1.att.key.weight") == "blocks.1.att.key");
  CHECK(layout::is_matrix_weight("blocks.1.att.key.weight"));
  CHECK_FALSE(layout::is_matrix_weight("blocks.1.att.key.lr_a"));
  CHECK(std::string(layout::kFoldedEmbedding) == "emb.folded");
  CHECK(std::string(layout::kClusteredHead) == "head.clustered");
  CHECK(std::string(layout::kHeadRowToken) == "head.row_token");
  CHECK(std::string(layout::kHeadClusterOffsets) == "head.cluster_offsets");
  CHECK(std::string(layout::kHeadClusterWeight) == "head.cluster_weight");
  CHECK(std::string(layout::kHeadClusterBias) == "head.cluster_bias");
  CHECK(layout::lora_rows("blocks.2.att.w1") == "blocks.2.att.w1.t");
  CHECK(layout::lora_factor_of("blocks.2.att.w1.t") == "blocks.2.att.w1");
  CHECK(layout::lora_factor_of("blocks.2.att.key.weight") == "blocks.2.att.key.weight");
}

TEST_CASE("layout knows the 2-D LoRA factors and their transposed names", "[layout]") {
  for (const char* f : {"w1", "w2", "a1", "a2", "v1", "v2", "g1", "g2", "time_maa_w1", "time_decay_w1", "time_decay_w2"}) {
    const std::string name = std::string("blocks.4.att.") + f;
    INFO(name);
    CHECK(layout::is_lora_factor(name));
    CHECK(layout::is_lora_rows(name + ".t"));
    CHECK_FALSE(layout::is_lora_rows(name));
  }
  for (const char* other : {"blocks.4.att.time_maa_w2", "blocks.4.att.w0", "blocks.4.ffn.w1", "blocks.4.att.key.weight",
                            "head.w1", "blocks.x.att.w1"}) {
    INFO(other);
    CHECK_FALSE(layout::is_lora_factor(other));
    CHECK_FALSE(layout::is_lora_rows(std::string(other) + ".t"));
  }
  CHECK_FALSE(layout::is_lora_rows("blocks.4.att.key.t"));
}

TEST_CASE("layout parses the layer index of a block name and nothing else", "[layout]") {
  CHECK(layout::layer_index(layout::ffn_value_neurons(17)) == 17);
  CHECK(layout::layer_index("blocks.0.ln0.weight") == 0);
  CHECK(layout::layer_index("blocks.007.att.key.weight") == 7);
  CHECK(layout::layer_index("blocks.9223372036854775807.x") == INT64_MAX);
  CHECK_FALSE(layout::layer_index("blocks.9223372036854775808.x"));
  CHECK_FALSE(layout::layer_index("blocks.x.att.key.weight"));
  CHECK_FALSE(layout::layer_index("blocks..att"));
  CHECK_FALSE(layout::layer_index("blocks.3"));
  CHECK_FALSE(layout::layer_index("blocks.-3.att"));
  CHECK_FALSE(layout::layer_index("head.weight"));
  CHECK_FALSE(layout::layer_index("xblocks.3.att"));
}

TEST_CASE("layout predicates accept exactly the names the regular expressions they replace did", "[layout]") {
  // The four expressions of compress/pipeline/pipeline.cpp and runtime/store/compact_model.cpp.
  const std::regex provided(R"(blocks\.\d+\.(att|ffn)\.(receptance|key|value|gate|output)\.weight)");
  const std::regex calibrated(R"(blocks\.\d+\.(att\.(receptance|key|value|gate|output)|ffn\.(receptance|key))\.weight)");
  const std::regex on_demand(R"(blocks\.\d+\.ffn\.(value\.neurons|predictor\.(down|up)|key\.sign))");
  const std::regex ffn_part(R"(blocks\.\d+\.ffn\.(key|value)\.(weight|lr_a|lr_b))");

  std::vector<std::string> names = {"head.weight", "head.clustered", "head.row_token", "emb.weight", "emb.folded",
                                    "ln_out.weight", "blocks", "blocks.", "blocks.1", "blocks.1.", "head.", "emb.",
                                    "head", "emb", "blocks.1.ffn.", "blocks.1.att.key.weight.x", "Blocks.1.att.key.weight",
                                    "blocks.1.att.key.weightx", "blocks.99999999999999999999999.ffn.key.weight"};
  for (const std::string layer : {"0", "12", "007", "x", "", "1a", "-1", " 1"}) {
    for (const std::string part : {"att", "ffn", "fn", "att.x", ""}) {
      for (const std::string rest : {"receptance.weight", "key.weight", "value.weight", "gate.weight", "output.weight",
                                     "key.lr_a", "key.lr_b", "value.lr_a", "value.lr_b", "value.neurons",
                                     "predictor.down", "predictor.up", "predictor.side", "key.sign", "key.sign.x",
                                     "time_mix_k", "ln_x.weight", "weight", ".weight", "key..weight", "key"}) {
        names.push_back("blocks." + layer + "." + part + "." + rest);
        names.push_back("blocks." + layer + part + "." + rest);
      }
    }
  }
  for (const std::string& n : names) {
    INFO(n);
    CHECK(layout::is_projection_weight(n) == (n == "head.weight" || std::regex_match(n, provided)));
    CHECK(layout::is_calibrated_projection(n) == std::regex_match(n, calibrated));
    CHECK(layout::is_read_on_demand(n) ==
          (n.starts_with("head.") || n.starts_with("emb.") || std::regex_match(n, on_demand)));
    CHECK(layout::is_channel_mix_matrix(n) == std::regex_match(n, ffn_part));
    CHECK(layout::is_lowrank_factor(n) == (n.ends_with(".lr_a") || n.ends_with(".lr_b")));
    CHECK(layout::is_head_tensor(n) == n.starts_with("head."));
    CHECK(layout::is_embedding_tensor(n) == n.starts_with("emb."));
  }
}

TEST_CASE("layout metadata round-trips through JSON in the key order the passes write", "[layout]") {
  layout::SparseFfnMeta sparse;
  sparse.neuron_cache_fraction = 0.5;
  sparse.layers.push_back({0, -1.25, 64});
  sparse.layers.push_back({3, 0.5f, 0});
  const nlohmann::ordered_json written = sparse.to_json();
  CHECK(written.dump() ==
        R"({"neuron_cache_fraction":0.5,"layers":[{"layer":0,"mlp_threshold":-1.25,"sign_top_k":64},)"
        R"({"layer":3,"mlp_threshold":0.5,"sign_top_k":0}]})");
  const json metadata = {{layout::SparseFfnMeta::kKey, json::parse(written.dump())}};
  const std::optional<layout::SparseFfnMeta> read = layout::SparseFfnMeta::from_json(metadata, "f");
  REQUIRE(read);
  CHECK(read->neuron_cache_fraction == 0.5);
  REQUIRE(read->layers.size() == 2);
  CHECK(read->to_json() == written);
  REQUIRE(read->layer(3));
  CHECK(read->layer(3)->mlp_threshold == 0.5);
  CHECK(read->layer(3)->sign_top_k == 0);
  CHECK_FALSE(read->layer(1));
  CHECK_FALSE(layout::SparseFfnMeta::from_json(json::object(), "f"));

  const layout::ClusteredHeadMeta head{16, 0.95, 1, 16};
  CHECK(head.to_json().dump() == R"({"k":16,"p":0.95,"min_clusters":1,"max_clusters":16})");
  const std::optional<layout::ClusteredHeadMeta> head_read =
      layout::ClusteredHeadMeta::from_json({{"clustered_head", json::parse(head.to_json().dump())}}, "f");
  REQUIRE(head_read);
  CHECK(head_read->to_json() == head.to_json());
  CHECK_FALSE(layout::ClusteredHeadMeta::from_json({{"other", 1}}, "f"));

  CHECK(layout::EmbeddingCacheMeta{256}.to_json() == 256);
  const auto rows = layout::EmbeddingCacheMeta::from_json({{"embedding_cache_rows", 256}}, "f");
  REQUIRE(rows);
  CHECK(rows->cache_rows == 256);
  CHECK_FALSE(layout::EmbeddingCacheMeta::from_json(json::object(), "f"));
}

TEST_CASE("layout metadata readers reject values of the wrong type with InputError", "[layout]") {
  auto sparse = [](json value) { return layout::SparseFfnMeta::from_json({{"sparse_ffn", value}}, "'f'"); };
  CHECK_THROWS_AS(sparse(1), InputError);
  CHECK_THROWS_WITH(sparse({{"neuron_cache_fraction", "half"}}), Catch::Contains("'neuron_cache_fraction' must be a number"));
  CHECK_THROWS_WITH(sparse({{"layers", json::object()}}), Catch::Contains("'sparse_ffn.layers' must be an array"));
  CHECK_THROWS_WITH(sparse({{"layers", {1}}}), Catch::Contains("entries must be objects"));
  CHECK_THROWS_WITH(sparse({{"layers", {{{"layer", 0.5}}}}}), Catch::Contains("'layer' must be an integer"));
  CHECK_THROWS_WITH(sparse({{"layers", {{{"layer", 2}, {"mlp_threshold", "x"}}}}}),
                    Catch::Contains("'f' layer 2: metadata 'mlp_threshold' must be a number"));
  CHECK_THROWS_WITH(sparse({{"layers", {{{"layer", 2}, {"sign_top_k", 1.5}}}}}),
                    Catch::Contains("'sign_top_k' must be an integer"));
  // Entries without a layer are ignored; a layer listed twice (which settings would apply?) or
  // a negative layer is refused.
  const auto tolerant = sparse({{"layers", {{{"mlp_threshold", 1}}, {{"layer", 1}, {"sign_top_k", 3}}}}});
  REQUIRE(tolerant);
  CHECK(tolerant->layers.size() == 1);
  CHECK(tolerant->layer(1)->sign_top_k == 3);
  CHECK_THROWS_WITH(sparse({{"layers", {{{"layer", 1}, {"sign_top_k", 3}}, {{"layer", 1}, {"sign_top_k", 4}}}}}),
                    Catch::Contains("'f' layer 1: metadata 'sparse_ffn.layers' lists the layer twice"));
  CHECK_THROWS_WITH(sparse({{"layers", {{{"layer", -2}, {"sign_top_k", 3}}}}}), Catch::Contains("negative layer"));
  // Ranges an option can override are the store's to check.
  CHECK(sparse({{"neuron_cache_fraction", 7}})->neuron_cache_fraction == 7);

  auto head = [](json value) { return layout::ClusteredHeadMeta::from_json({{"clustered_head", value}}, "f"); };
  CHECK_THROWS_WITH(head("x"), Catch::Contains("'clustered_head' must be an object"));
  CHECK_THROWS_WITH(head({{"p", "x"}}), Catch::Contains("'p' must be a number"));
  CHECK_THROWS_WITH(head({{"k", 2.5}}), Catch::Contains("'k' must be an integer"));
  CHECK_THROWS_WITH(head({{"min_clusters", true}}), Catch::Contains("'min_clusters' must be an integer"));
  CHECK_THROWS_WITH(head({{"max_clusters", "8"}}), Catch::Contains("'max_clusters' must be an integer"));
  CHECK(head({{"p", 0.5}})->p == 0.5);

  auto rows = [](json value) { return layout::EmbeddingCacheMeta::from_json({{"embedding_cache_rows", value}}, "f"); };
  CHECK_THROWS_WITH(rows("many"), Catch::Contains("'embedding_cache_rows' must be an integer"));
  CHECK_THROWS_WITH(rows(0), Catch::Contains("'embedding_cache_rows' must be at least 1"));
  CHECK_THROWS_AS(rows(-5), InputError);
}
