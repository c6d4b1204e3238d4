#include "runtime/format/layout.h"

#include <algorithm>
#include <initializer_list>

#include "runtime/core/error.h"

namespace rwkvlite::layout {
namespace {

constexpr std::string_view kBlocks = "blocks.";
constexpr std::string_view kWeight = ".weight";
constexpr std::string_view kLowRankA = ".lr_a";
constexpr std::string_view kLowRankB = ".lr_b";
constexpr std::string_view kLoraRows = ".t";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The digits of a "blocks.{digits}.{rest}" name, and the rest; nullopt for other names.
struct BlockName {
  std::string_view digits, rest;
};
std::optional<BlockName> split_block_name(std::string_view name) {
  if (!name.starts_with(kBlocks)) return std::nullopt;
  name.remove_prefix(kBlocks.size());
  size_t n = 0;
  while (n < name.size() && is_digit(name[n])) ++n;
  if (n == 0 || n == name.size() || name[n] != '.') return std::nullopt;
  return BlockName{name.substr(0, n), name.substr(n + 1)};
}

bool is_one_of(std::string_view s, std::initializer_list<std::string_view> options) {
  return std::find(options.begin(), options.end(), s) != options.end();
}

// "{part}.{matrix}.weight" with part and matrix from the given lists.
bool is_matrix_of(std::string_view rest, std::initializer_list<std::string_view> parts,
                  std::initializer_list<std::string_view> matrices) {
  if (!rest.ends_with(kWeight)) return false;
  rest.remove_suffix(kWeight.size());
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return false;
  return is_one_of(rest.substr(0, dot), parts) && is_one_of(rest.substr(dot + 1), matrices);
}

// Strict readers of metadata fields: a present key of the wrong type is a bad file.
const nlohmann::json* field(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return nullptr;
  return &j.at(key);
}
const nlohmann::json* object_at(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json* v = field(j, key);
  if (v && !v->is_object()) throw InputError(where + ": metadata '" + key + "' must be an object");
  return v;
}
std::optional<double> number_at(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json* v = field(j, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw InputError(where + ": metadata '" + key + "' must be a number");
  return v->get<double>();
}
std::optional<int64_t> integer_at(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json* v = field(j, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) throw InputError(where + ": metadata '" + key + "' must be an integer");
  return v->get<int64_t>();
}

}  // namespace

// ---- Names -----------------------------------------------------------------------------------

std::string block_prefix(int64_t layer) { return std::string(kBlocks) + std::to_string(layer) + "."; }
std::string ffn_prefix(int64_t layer) { return block_prefix(layer) + "ffn."; }
std::string ffn_tensor_name(int64_t layer, std::string_view suffix) { return ffn_prefix(layer) + std::string(suffix); }
std::string ffn_key_weight(int64_t layer) { return ffn_tensor_name(layer, "key.weight"); }
std::string ffn_value_weight(int64_t layer) { return ffn_tensor_name(layer, "value.weight"); }

bool is_matrix_weight(std::string_view name) { return name.ends_with(kWeight); }
std::string matrix_weight(std::string_view base) { return std::string(base) + std::string(kWeight); }
std::string matrix_base(std::string_view weight_name) {
  return std::string(weight_name.substr(0, weight_name.size() - kWeight.size()));
}

std::optional<int64_t> layer_index(std::string_view name) {
  const std::optional<BlockName> b = split_block_name(name);
  if (!b) return std::nullopt;
  int64_t layer = 0;
  for (char c : b->digits) {
    const int digit = c - '0';
    if (layer > (INT64_MAX - digit) / 10) return std::nullopt;
    layer = layer * 10 + digit;
  }
  return layer;
}

std::string lowrank_a(std::string_view base) { return std::string(base) + std::string(kLowRankA); }
std::string lowrank_b(std::string_view base) { return std::string(base) + std::string(kLowRankB); }
bool is_lowrank_factor(std::string_view name) { return name.ends_with(kLowRankA) || name.ends_with(kLowRankB); }

std::string lora_rows(std::string_view factor) { return std::string(factor) + std::string(kLoraRows); }
bool is_lora_rows(std::string_view name) {
  return name.ends_with(kLoraRows) && is_lora_factor(name.substr(0, name.size() - kLoraRows.size()));
}
std::string lora_factor_of(std::string_view name) {
  return std::string(is_lora_rows(name) ? name.substr(0, name.size() - kLoraRows.size()) : name);
}

std::string ffn_value_neurons(int64_t layer) { return ffn_tensor_name(layer, "value.neurons"); }
std::string ffn_predictor_down(int64_t layer) { return ffn_tensor_name(layer, "predictor.down"); }
std::string ffn_predictor_up(int64_t layer) { return ffn_tensor_name(layer, "predictor.up"); }
std::string ffn_key_sign(int64_t layer) { return ffn_tensor_name(layer, "key.sign"); }

// ---- Predicates ------------------------------------------------------------------------------

bool is_projection_weight(std::string_view name) {
  if (name == kHead) return true;
  const std::optional<BlockName> b = split_block_name(name);
  return b && is_matrix_of(b->rest, {"att", "ffn"}, {"receptance", "key", "value", "gate", "output"});
}

bool is_calibrated_projection(std::string_view name) {
  const std::optional<BlockName> b = split_block_name(name);
  return b && (is_matrix_of(b->rest, {"att"}, {"receptance", "key", "value", "gate", "output"}) ||
               is_matrix_of(b->rest, {"ffn"}, {"receptance", "key"}));
}

bool is_lora_factor(std::string_view name) {
  const std::optional<BlockName> b = split_block_name(name);
  return b && is_one_of(b->rest, {"att.w1", "att.w2", "att.a1", "att.a2", "att.v1", "att.v2", "att.g1", "att.g2",
                                  "att.time_maa_w1", "att.time_decay_w1", "att.time_decay_w2"});
}

bool is_head_tensor(std::string_view name) { return name.starts_with("head."); }
bool is_embedding_tensor(std::string_view name) { return name.starts_with("emb."); }

bool is_read_on_demand(std::string_view name) {
  if (is_head_tensor(name) || is_embedding_tensor(name)) return true;
  const std::optional<BlockName> b = split_block_name(name);
  return b && is_one_of(b->rest, {"ffn.value.neurons", "ffn.predictor.down", "ffn.predictor.up", "ffn.key.sign"});
}

bool is_channel_mix_matrix(std::string_view name) {
  const std::optional<BlockName> b = split_block_name(name);
  return b && is_one_of(b->rest, {"ffn.key.weight", "ffn.key.lr_a", "ffn.key.lr_b", "ffn.value.weight",
                                  "ffn.value.lr_a", "ffn.value.lr_b"});
}

// ---- Metadata --------------------------------------------------------------------------------

nlohmann::ordered_json SparseFfnLayerMeta::to_json() const {
  nlohmann::ordered_json j = {{"layer", layer}};
  if (mlp_threshold) j["mlp_threshold"] = *mlp_threshold;
  if (sign_top_k) j["sign_top_k"] = *sign_top_k;
  return j;
}

const SparseFfnLayerMeta* SparseFfnMeta::layer(int64_t l) const {
  for (const SparseFfnLayerMeta& entry : layers) {
    if (entry.layer == l) return &entry;
  }
  return nullptr;
}

nlohmann::ordered_json SparseFfnMeta::to_json() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (neuron_cache_fraction) j["neuron_cache_fraction"] = *neuron_cache_fraction;
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  for (const SparseFfnLayerMeta& entry : layers) entries.push_back(entry.to_json());
  j["layers"] = std::move(entries);
  return j;
}

std::optional<SparseFfnMeta> SparseFfnMeta::from_json(const nlohmann::json& metadata, const std::string& where) {
  const nlohmann::json* j = object_at(metadata, kKey, where);
  if (!j) return std::nullopt;
  SparseFfnMeta meta;
  meta.neuron_cache_fraction = number_at(*j, "neuron_cache_fraction", where);
  const nlohmann::json* layers = field(*j, "layers");
  if (!layers) return meta;
  if (!layers->is_array()) throw InputError(where + ": metadata 'sparse_ffn.layers' must be an array");
  for (const nlohmann::json& entry : *layers) {
    if (!entry.is_object()) throw InputError(where + ": metadata 'sparse_ffn.layers' entries must be objects");
    const std::optional<int64_t> layer = integer_at(entry, "layer", where);
    if (!layer) continue;
    const std::string lw = where + " layer " + std::to_string(*layer);
    // One entry per layer: with two, which settings apply would depend on lookup order.
    if (*layer < 0) throw InputError(lw + ": metadata 'sparse_ffn.layers' names a negative layer");
    if (meta.layer(*layer)) throw InputError(lw + ": metadata 'sparse_ffn.layers' lists the layer twice");
    meta.layers.push_back({*layer, number_at(entry, "mlp_threshold", lw), integer_at(entry, "sign_top_k", lw)});
  }
  return meta;
}

nlohmann::ordered_json ClusteredHeadMeta::to_json() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (k) j["k"] = *k;
  if (p) j["p"] = *p;
  if (min_clusters) j["min_clusters"] = *min_clusters;
  if (max_clusters) j["max_clusters"] = *max_clusters;
  return j;
}

std::optional<ClusteredHeadMeta> ClusteredHeadMeta::from_json(const nlohmann::json& metadata,
                                                              const std::string& where) {
  const nlohmann::json* j = object_at(metadata, kKey, where);
  if (!j) return std::nullopt;
  ClusteredHeadMeta meta;
  meta.k = integer_at(*j, "k", where);
  meta.p = number_at(*j, "p", where);
  meta.min_clusters = integer_at(*j, "min_clusters", where);
  meta.max_clusters = integer_at(*j, "max_clusters", where);
  return meta;
}

std::optional<EmbeddingCacheMeta> EmbeddingCacheMeta::from_json(const nlohmann::json& metadata,
                                                                const std::string& where) {
  const std::optional<int64_t> rows = integer_at(metadata, kKey, where);
  if (!rows) return std::nullopt;
  if (*rows < 1) throw InputError(where + ": metadata '" + std::string(kKey) + "' must be at least 1");
  return EmbeddingCacheMeta{*rows};
}

}  // namespace rwkvlite::layout
