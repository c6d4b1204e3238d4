// The contract between the compression passes (writers) and the runtime's weight store
// (reader), in one place: every tensor name the compressed forms add or rely on, the
// predicates that classify names, and the typed metadata settings with their JSON
// (docs/compact-format.md section 6). Passes build names and metadata through it and
// runtime/store reads through it, so a name is spelled once.
//
// The compact format itself is name-agnostic; nothing here changes how a file is laid out.
// Names follow BlinkDL's canonical spelling ("blocks.{i}.ffn.key.weight"); the compressed
// forms add suffixes next to them (".lr_a", ".value.neurons", "head.clustered", ...).
//
// Metadata readers (from_json) take the file's whole metadata object and reject a present
// key of the wrong type with an InputError naming `where` (hostile files). Ranges that a
// runtime option can override are checked by the store on the value it ends up using.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rwkvlite::layout {

// ---- Canonical names the compressed forms replace or rely on ---------------------------------

inline constexpr const char* kEmbedding = "emb.weight";        // [V, D]
inline constexpr const char* kHead = "head.weight";            // [V, D]
inline constexpr const char* kLn0Weight = "blocks.0.ln0.weight";  // [D], folded into emb.folded
inline constexpr const char* kLn0Bias = "blocks.0.ln0.bias";      // [D]

// "blocks.{layer}."
std::string block_prefix(int64_t layer);
// "blocks.{layer}.ffn.": every channel-mix tensor of the layer starts with it.
std::string ffn_prefix(int64_t layer);
// "blocks.{layer}.ffn.{suffix}".
std::string ffn_tensor_name(int64_t layer, std::string_view suffix);
std::string ffn_key_weight(int64_t layer);    // [F, D]; row-addressable once neuron-major
std::string ffn_value_weight(int64_t layer);  // [D, F]

// A dense matrix "<base>.weight" (base like "blocks.3.att.key").
bool is_matrix_weight(std::string_view name);
std::string matrix_weight(std::string_view base);
// The base of "<base>.weight"; `weight_name` must satisfy is_matrix_weight.
std::string matrix_base(std::string_view weight_name);

// The layer index i of a "blocks.{i}. ..." name; nullopt for other names (or an index beyond
// int64).
std::optional<int64_t> layer_index(std::string_view name);

// ---- Names the passes add --------------------------------------------------------------------

// lowrank: W ~= lr_b · lr_a replaces <base>.weight; lr_a [r, in], lr_b [out, r].
std::string lowrank_a(std::string_view base);
std::string lowrank_b(std::string_view base);
bool is_lowrank_factor(std::string_view name);

// quantize: a 2-D LoRA factor (is_lora_factor) in any encoding but f32 is stored transposed,
// as "<factor>.t" [out, in], because the codecs encode rows of a y = W x matrix and BlinkDL's
// factors are applied as x @ A with A [in, out].
std::string lora_rows(std::string_view factor);
bool is_lora_rows(std::string_view name);
// The factor a "<factor>.t" name stores; `name` itself for other names.
std::string lora_factor_of(std::string_view name);

// neuron_major: the value matrix transposed, row j = neuron j's output vector [F, D].
std::string ffn_value_neurons(int64_t layer);
// sparsity_predictor: the MLP predictor down [r, D], up [F, r] and the 1-bit key copy [F, D].
std::string ffn_predictor_down(int64_t layer);
std::string ffn_predictor_up(int64_t layer);
std::string ffn_key_sign(int64_t layer);

// cluster_head: head rows grouped by cluster and the tables that describe the clusters.
inline constexpr const char* kClusteredHead = "head.clustered";           // [V, D], row-addressable
inline constexpr const char* kHeadRowToken = "head.row_token";            // [V] i32
inline constexpr const char* kHeadClusterOffsets = "head.cluster_offsets";  // [K+1] i32
inline constexpr const char* kHeadClusterWeight = "head.cluster_weight";  // [K, D]
inline constexpr const char* kHeadClusterBias = "head.cluster_bias";      // [K]

// fold_embedding: ln0(emb.weight row) per token, replaces emb.weight; row-addressable.
inline constexpr const char* kFoldedEmbedding = "emb.folded";  // [V, D]

// ---- Predicates ------------------------------------------------------------------------------

// The y = W x matrices of the engine: head.weight and
// blocks.{i}.(att|ffn).(receptance|key|value|gate|output).weight.
bool is_projection_weight(std::string_view name);
// The projections whose input statistics calibration records: every time-mix matrix and the
// channel-mix receptance and key (not the channel-mix value: its F-wide input would make the
// statistics F x F).
bool is_calibrated_projection(std::string_view name);
// The 2-D LoRA factors the engine applies as x @ A: v7's blocks.{i}.att.(w1|w2|a1|a2|v1|v2|g1|g2)
// and v6's blocks.{i}.att.(time_maa_w1|time_decay_w1|time_decay_w2) (not v6's 3-D time_maa_w2).
bool is_lora_factor(std::string_view name);
// Tensors of the head ("head.*") and of the embedding ("emb.*").
bool is_head_tensor(std::string_view name);
bool is_embedding_tensor(std::string_view name);
// Tensors the runtime's head, embedding and sparse channel mix read themselves, never as
// small decoded tensors: every head.* and emb.* tensor, and blocks.{i}.ffn.value.neurons,
// .predictor.down, .predictor.up and .key.sign.
bool is_read_on_demand(std::string_view name);
// The channel-mix key and value matrices and their low-rank factors:
// blocks.{i}.ffn.(key|value).(weight|lr_a|lr_b).
bool is_channel_mix_matrix(std::string_view name);

// ---- Metadata --------------------------------------------------------------------------------

// metadata "sparse_ffn": settings of the layers the sparsity_predictor pass gave a predictor.
//   {"neuron_cache_fraction": x, "layers": [{"layer": i, "mlp_threshold": t, "sign_top_k": k}, ...]}
struct SparseFfnLayerMeta {
  int64_t layer = 0;
  std::optional<double> mlp_threshold;  // needed when the layer has predictor.down/up (a logit)
  std::optional<int64_t> sign_top_k;    // needed when the layer has key.sign
  nlohmann::ordered_json to_json() const;
};
struct SparseFfnMeta {
  static constexpr const char* kKey = "sparse_ffn";
  std::optional<double> neuron_cache_fraction;  // (0, 1] for the runtime; checked where used
  std::vector<SparseFfnLayerMeta> layers;

  // The entry of `layer` (the first, if several), or null.
  const SparseFfnLayerMeta* layer(int64_t layer) const;
  nlohmann::ordered_json to_json() const;
  // nullopt when the metadata has no "sparse_ffn". InputError when it, "layers" or an entry is
  // not an object / array, or a present field has the wrong type; entries without "layer"
  // are ignored.
  static std::optional<SparseFfnMeta> from_json(const nlohmann::json& metadata, const std::string& where);
};

// metadata "clustered_head": the two-level head's settings, {k, p, min_clusters, max_clusters}.
// Present fields only; the runtime's defaults fill the rest and its options override them.
struct ClusteredHeadMeta {
  static constexpr const char* kKey = "clustered_head";
  std::optional<int64_t> k;
  std::optional<double> p;
  std::optional<int64_t> min_clusters;
  std::optional<int64_t> max_clusters;

  nlohmann::ordered_json to_json() const;
  // nullopt when absent; InputError when not an object or a field has the wrong type.
  static std::optional<ClusteredHeadMeta> from_json(const nlohmann::json& metadata, const std::string& where);
};

// metadata "embedding_cache_rows": how many embedding rows the runtime keeps.
struct EmbeddingCacheMeta {
  static constexpr const char* kKey = "embedding_cache_rows";
  int64_t cache_rows = 0;

  nlohmann::ordered_json to_json() const { return cache_rows; }
  // nullopt when absent; InputError when not an integer or below 1.
  static std::optional<EmbeddingCacheMeta> from_json(const nlohmann::json& metadata, const std::string& where);
};

}  // namespace rwkvlite::layout
