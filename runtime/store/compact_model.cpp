#include "runtime/store/compact_model.h"

#include <cmath>
#include <regex>

#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/engine/build_weights.h"
#include "runtime/engine/embedding.h"
#include "runtime/engine/head.h"
#include "runtime/format/codec.h"
#include "runtime/format/model_json.h"
#include "runtime/store/encoded_projection.h"
#include "runtime/store/row_embedding.h"
#include "runtime/store/two_level_head.h"

namespace rwkvlite {
namespace {

// The y = W x matrices the builder asks the matrix provider for; everything else (norms,
// mixes, decays, LoRA factors) is decoded to FP32 and goes through the dense translation code.
bool is_provided_matrix(const std::string& name) {
  static const std::regex linear(R"(blocks\.\d+\.(att|ffn)\.(receptance|key|value|gate|output)\.weight)");
  return name == "head.weight" || std::regex_match(name, linear);
}

// Tensors the on-demand parts read themselves (never decoded as small tensors).
bool is_on_demand_tensor(const std::string& name) {
  static const std::regex ffn(R"(blocks\.\d+\.ffn\.(value\.neurons|predictor\.(down|up)|key\.sign))");
  return name.starts_with("head.") || name.starts_with("emb.") || std::regex_match(name, ffn);
}

// The residency part a provided matrix belongs to.
std::shared_ptr<ResidencyCounter> part_counter(const ResidencyByPart& parts, const std::string& name) {
  static const std::regex ffn(R"(blocks\.\d+\.ffn\.(key|value)\.(weight|lr_a|lr_b))");
  if (name.starts_with("head.")) return parts.head;
  if (std::regex_match(name, ffn)) return parts.ffn;
  return parts.other;
}

// Strict readers of the metadata settings: a present key of the wrong type is a bad file.
const nlohmann::json* object_at(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) return nullptr;
  const nlohmann::json& v = j.at(key);
  if (!v.is_object()) throw InputError(where + ": metadata '" + key + "' must be an object");
  return &v;
}
std::optional<double> number_at(const nlohmann::json* j, const char* key, const std::string& where) {
  if (!j || !j->contains(key)) return std::nullopt;
  const nlohmann::json& v = j->at(key);
  if (!v.is_number()) throw InputError(where + ": metadata '" + key + "' must be a number");
  return v.get<double>();
}
std::optional<int64_t> integer_at(const nlohmann::json* j, const char* key, const std::string& where) {
  if (!j || !j->contains(key)) return std::nullopt;
  const nlohmann::json& v = j->at(key);
  if (!v.is_number_integer()) throw InputError(where + ": metadata '" + key + "' must be an integer");
  return v.get<int64_t>();
}

// The sparse_ffn.layers entry of one layer, or null.
const nlohmann::json* sparse_layer_settings(const nlohmann::json* sparse, int64_t layer, const std::string& where) {
  if (!sparse || !sparse->contains("layers")) return nullptr;
  const nlohmann::json& layers = sparse->at("layers");
  if (!layers.is_array()) throw InputError(where + ": metadata 'sparse_ffn.layers' must be an array");
  for (const nlohmann::json& l : layers) {
    if (!l.is_object()) throw InputError(where + ": metadata 'sparse_ffn.layers' entries must be objects");
    if (integer_at(&l, "layer", where) == layer) return &l;
  }
  return nullptr;
}

// Embedding rows kept in their stored encoding, decoded on lookup.
class EncodedEmbedding final : public Embedding {
 public:
  EncodedEmbedding(int64_t vocab, int64_t d, format::EncodingSpec enc, std::vector<uint8_t> bytes,
                   std::shared_ptr<ResidencyCounter> counter)
      : vocab_(vocab),
        d_(d),
        enc_(enc),
        row_bytes_(format::encoded_row_bytes(enc.encoding, d, enc.params)),
        bytes_(std::move(bytes)),
        resident_(std::move(counter), static_cast<int64_t>(bytes_.size())) {}
  int64_t vocab_size() const override { return vocab_; }
  int64_t n_embd() const override { return d_; }
  void lookup(int32_t token, float* out) const override {
    format::decode_row(&bytes_[static_cast<size_t>(token) * row_bytes_], d_, enc_.encoding, enc_.params, out);
  }
  int64_t storage_bytes() const override { return static_cast<int64_t>(bytes_.size()); }

 private:
  int64_t vocab_, d_;
  format::EncodingSpec enc_;
  size_t row_bytes_;
  std::vector<uint8_t> bytes_;
  ResidentBytes resident_;
};

}  // namespace

bool is_compact_file(const std::string& path) {
  char magic[8] = {};
  try {
    InputFile f(path);
    if (f.size() < 8) return false;
    f.read_at(0, magic, 8, "the magic");
  } catch (const Error&) {
    return false;
  }
  return std::string(magic, 8) == std::string(format::kMagic, 8);
}

CompactEngine load_compact_engine(const std::string& path, const RuntimeOptions& options) {
  auto file = std::make_shared<format::CompactFile>(format::CompactFile::open(path));
  auto stats = std::make_shared<RuntimeStats>();
  const ResidencyByPart& parts = stats->residency;
  const format::ArchInfo arch = format::arch_from_json(file->arch());
  const std::string where = "'" + path + "'";

  // Small tensors decoded to FP32; they live in the engine's vectors for its whole life.
  Model small;
  small.arch = arch.arch;
  small.ln_x_eps = arch.ln_x_eps;
  small.dims = format::dims_from_json(file->dims());
  small.source_format = "rwkvlite compact";
  int64_t small_bytes = 0;
  for (const format::TensorInfo& t : file->tensors()) {
    if (is_provided_matrix(t.name) || is_on_demand_tensor(t.name) || t.name.ends_with(".lr_a") ||
        t.name.ends_with(".lr_b")) {
      continue;
    }
    small.tensors[t.name] = file->decode_tensor(t.name);
    small_bytes += small.tensors[t.name].numel() * static_cast<int64_t>(sizeof(float));
  }
  const bool folded = file->find("emb.folded") != nullptr;
  if (folded && !small.tensors.contains("blocks.0.ln0.weight")) {
    // The engine skips ln0 for a folded embedding; the builder still wants the vectors.
    const int64_t d = small.dims.n_embd;
    small.tensors["blocks.0.ln0.weight"] = Tensor{{d}, std::vector<float>(static_cast<size_t>(d), 1.0f)};
    small.tensors["blocks.0.ln0.bias"] = Tensor{{d}, std::vector<float>(static_cast<size_t>(d), 0.0f)};
  }
  // Decoded small tensors live in the engine's vectors for its whole life.
  parts.other->add(small_bytes);

  auto encoded = [file, &parts](const std::string& name, int64_t rows, int64_t cols,
                                std::shared_ptr<ResidencyCounter> counter) -> std::unique_ptr<Projection> {
    const format::TensorInfo& t = file->tensor(name);
    if (t.rows != rows || t.cols != cols) {
      throw InputError("'" + name + "' is stored as " + std::to_string(t.rows) + " x " + std::to_string(t.cols) +
                       ", the model needs " + std::to_string(rows) + " x " + std::to_string(cols));
    }
    if (!counter) counter = part_counter(parts, name);
    return std::make_unique<EncodedProjection>(rows, cols, t.encoding, file->read_tensor(name), std::move(counter));
  };
  WeightProviders providers;
  providers.matrix = [file, encoded](const std::string& name, int64_t rows, int64_t cols) -> std::unique_ptr<Projection> {
    const std::string base = name.substr(0, name.size() - std::string(".weight").size());
    if (file->find(base + ".lr_a")) {
      const format::TensorInfo& a = file->tensor(base + ".lr_a");
      return std::make_unique<LowRankProjection>(encoded(base + ".lr_a", a.rows, cols, nullptr),
                                                 encoded(base + ".lr_b", rows, a.rows, nullptr));
    }
    if (!file->find(name)) throw InputError("'" + file->path() + "' has neither '" + name + "' nor its low-rank factors");
    return encoded(name, rows, cols, nullptr);
  };

  // Sparse channel mix for every layer stored neuron-major.
  const nlohmann::json* sparse = object_at(file->metadata(), "sparse_ffn", where);
  double cache_fraction = options.neuron_cache_fraction.value_or(number_at(sparse, "neuron_cache_fraction", where).value_or(1.0));
  if (!(cache_fraction > 0.0 && cache_fraction <= 1.0)) {
    const std::string msg = "neuron cache fraction must be in (0, 1], got " + std::to_string(cache_fraction);
    if (options.neuron_cache_fraction) throw UsageError(msg);
    throw InputError(where + ": metadata " + msg);
  }
  providers.channel_mix = [&, file](int64_t layer) -> std::unique_ptr<ChannelMix> {
    const std::string base = "blocks." + std::to_string(layer) + ".ffn.";
    if (!file->find(base + "value.neurons")) return nullptr;
    if (!file->find(base + "key.weight")) {
      throw InputError(where + " has '" + base + "value.neurons' but no row-addressable '" + base + "key.weight'");
    }
    const int64_t f = file->tensor(base + "key.weight").rows, d = file->tensor(base + "key.weight").cols;
    auto layer_counter = std::make_shared<ResidencyCounter>(parts.ffn);
    const nlohmann::json* settings = sparse_layer_settings(sparse, layer, where);
    const std::string lw = where + " layer " + std::to_string(layer);
    NeuronPredictor predictor;
    const bool has_down = file->find(base + "predictor.down"), has_up = file->find(base + "predictor.up");
    if (has_down != has_up) throw InputError(lw + ": the predictor needs both 'predictor.down' and 'predictor.up'");
    if (has_down) {
      const format::TensorInfo& down = file->tensor(base + "predictor.down");
      predictor.down = encoded(base + "predictor.down", down.rows, d, layer_counter);
      predictor.up = encoded(base + "predictor.up", f, down.rows, layer_counter);
      const std::optional<double> threshold = number_at(settings, "mlp_threshold", lw);
      if (!threshold) throw InputError(lw + ": metadata sparse_ffn.layers has no 'mlp_threshold' for the MLP predictor");
      predictor.mlp_threshold = static_cast<float>(*threshold);
    }
    if (file->find(base + "key.sign")) {
      predictor.sign = encoded(base + "key.sign", f, d, layer_counter);
      const std::optional<int64_t> top_k = integer_at(settings, "sign_top_k", lw);
      if (!top_k) throw InputError(lw + ": metadata sparse_ffn.layers has no 'sign_top_k' for the 1-bit predictor");
      predictor.sign_top_k = *top_k;
    }
    NeuronChannelMixOptions o;
    o.layer = layer;
    // A layer without a predictor computes every neuron on every token, so unless the user asks
    // for less, its cache holds all of them (a smaller one would only re-read rows each token).
    const double fraction = predictor.empty() && !options.neuron_cache_fraction ? 1.0 : cache_fraction;
    o.cache_rows = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(fraction * static_cast<double>(f))));
    o.audit = options.audit_sparsity;
    o.trace = options.neuron_trace;
    auto layer_stats = std::make_shared<SparseFfnLayerStats>();
    stats->ffn_layers.push_back(layer_stats);
    return std::make_unique<NeuronChannelMix>(file, base + "key.weight", base + "value.neurons", std::move(predictor),
                                              std::move(o), layer_counter, layer_stats);
  };

  if (file->find("head.clustered")) {
    const nlohmann::json* head = object_at(file->metadata(), "clustered_head", where);
    TwoLevelHeadOptions o;
    o.p = options.head_p.value_or(number_at(head, "p", where).value_or(0.95));
    o.min_clusters = options.head_min_clusters.value_or(integer_at(head, "min_clusters", where).value_or(1));
    o.max_clusters = options.head_max_clusters.value_or(integer_at(head, "max_clusters", where).value_or(0));
    if (options.head_cache_rows && *options.head_cache_rows < 1) throw UsageError("head cache rows must be at least 1");
    o.cache_rows = options.head_cache_rows.value_or(0);
    providers.head = [&, file, o]() -> std::unique_ptr<Head> {
      stats->head = std::make_shared<ClusteredHeadStats>();
      return std::make_unique<TwoLevelHead>(file, o, parts.head, stats->head);
    };
  }

  const std::optional<int64_t> emb_rows =
      options.embedding_cache_rows ? options.embedding_cache_rows : integer_at(&file->metadata(), "embedding_cache_rows", where);
  if (emb_rows && *emb_rows < 1) {
    if (options.embedding_cache_rows) throw UsageError("embedding cache rows must be at least 1");
    throw InputError(where + ": metadata 'embedding_cache_rows' must be at least 1");
  }
  providers.embedding = [&, file]() -> std::unique_ptr<Embedding> {
    const std::string name = folded ? "emb.folded" : "emb.weight";
    const format::TensorInfo& t = file->tensor(name);
    if (folded || emb_rows) {
      stats->embedding = std::make_shared<RowEmbeddingStats>();
      return std::make_unique<RowEmbedding>(file, name, emb_rows.value_or(t.rows), parts.embedding, stats->embedding);
    }
    return std::make_unique<EncodedEmbedding>(t.rows, t.cols, t.encoding, file->read_tensor(name), parts.embedding);
  };

  CompactEngine out;
  EngineOptions engine_options;
  engine_options.threads = options.threads;
  out.engine = std::make_unique<Engine>(build_weights(small, std::move(providers)), engine_options);
  out.residency = parts.total;
  out.reads = file->read_stats();
  out.metadata = file->metadata();
  out.stats = stats;
  return out;
}

}  // namespace rwkvlite
