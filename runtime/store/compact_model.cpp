#include "runtime/store/compact_model.h"

#include <cmath>
#include <optional>
#include <set>

#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/engine/build_weights.h"
#include "runtime/format/elastic_meta.h"
#include "runtime/format/layout.h"
#include "runtime/format/model_json.h"
#include "runtime/store/encoded_projection.h"
#include "runtime/store/row_embedding.h"
#include "runtime/store/speed_probe.h"
#include "runtime/store/two_level_head.h"

namespace rwkvlite {
namespace {

// A header edited consistently, with its checksum recomputed, passes every structural check of
// the format, whose dims are opaque to it. What the engine relies on is checked here: every
// block tensor and every per-layer metadata entry belongs to a layer the dims declare, so a
// changed layer count cannot silently drop layers (the builder looks up layers 0..n_layer-1
// and fails on a missing one; one beyond them it would never see).
void check_layers_against_dims(const format::CompactFile& file, const ModelDims& dims) {
  const std::string where = "'" + file.path() + "'";
  std::set<int64_t> layers_present;  // not a vector of n_layer flags: n_layer is the file's word
  for (const format::TensorInfo& t : file.tensors()) {
    const std::optional<int64_t> layer = layout::layer_index(t.name);
    if (!layer) continue;
    if (*layer >= dims.n_layer) {
      throw InputError(where + ": tensor '" + t.name + "' belongs to layer " + std::to_string(*layer) +
                       ", but the header's dims declare " + std::to_string(dims.n_layer) + " layers");
    }
    layers_present.insert(*layer);
  }
  if (static_cast<int64_t>(layers_present.size()) != dims.n_layer) {
    int64_t missing = 0;  // the first layer without tensors; all present ones are below n_layer
    while (layers_present.contains(missing)) ++missing;
    throw InputError(where + ": the header's dims declare " + std::to_string(dims.n_layer) +
                     " layers, but the file has no tensors of layer " + std::to_string(missing));
  }
  if (const std::optional<layout::SparseFfnMeta> meta = layout::SparseFfnMeta::from_json(file.metadata(), where)) {
    for (const layout::SparseFfnLayerMeta& entry : meta->layers) {
      if (entry.layer >= dims.n_layer) {
        throw InputError(where + ": metadata sparse_ffn.layers names layer " + std::to_string(entry.layer) +
                         ", but the header's dims declare " + std::to_string(dims.n_layer) + " layers");
      }
    }
  }
}

// Tensors decoded to FP32 for the builder's translation code: everything the providers do not
// read themselves (norms, mixes, decays, LoRA factors stored as they are in FP32).
bool is_small_tensor(const std::string& name) {
  return !layout::is_projection_weight(name) && !layout::is_read_on_demand(name) && !layout::is_lowrank_factor(name) &&
         !layout::is_lora_rows(name);
}

// The small tensors of `file` as a canonical model (arch, dims and those tensors); they live in
// the engine's vectors for its whole life, so their bytes count under `counter` from now on.
Model decode_small_tensors(const format::CompactFile& file, ResidencyCounter& counter) {
  const format::ArchInfo arch = format::arch_from_json(file.arch());
  Model small;
  small.arch = arch.arch;
  small.ln_x_eps = arch.ln_x_eps;
  small.dims = format::dims_from_json(file.dims());
  check_layers_against_dims(file, small.dims);
  small.source_format = "rwkvlite compact";
  int64_t small_bytes = 0;
  for (const format::TensorInfo& t : file.tensors()) {
    if (!is_small_tensor(t.name)) continue;
    small.tensors[t.name] = file.decode_tensor(t.name);
    // A checksum only proves the bytes are the ones written; a NaN written (or a header edited
    // and re-checksummed) must still not load. Encoded projections are caught by the logit
    // check of eval and generate instead (their rows are decoded lazily).
    int64_t non_finite = 0;
    for (float v : small.tensors[t.name].data) non_finite += !std::isfinite(v);
    if (non_finite) {
      throw InputError("'" + file.path() + "': tensor '" + t.name + "' has " + std::to_string(non_finite) +
                       " NaN or Inf values");
    }
    small_bytes += small.tensors[t.name].numel() * static_cast<int64_t>(sizeof(float));
  }
  if (file.find(layout::kFoldedEmbedding) && !small.tensors.contains(layout::kLn0Weight)) {
    // The engine skips ln0 for a folded embedding; the builder still wants the vectors.
    const int64_t d = small.dims.n_embd;
    small.tensors[layout::kLn0Weight] = Tensor{{d}, std::vector<float>(static_cast<size_t>(d), 1.0f)};
    small.tensors[layout::kLn0Bias] = Tensor{{d}, std::vector<float>(static_cast<size_t>(d), 0.0f)};
  }
  counter.add(small_bytes);
  return small;
}

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

int64_t non_elastic_resident_bytes(const format::CompactFile& file) {
  int64_t bytes = 0;
  for (const format::TensorInfo& t : file.tensors()) {
    if (layout::is_elastic_variant(t.name)) continue;
    bytes += is_small_tensor(t.name) ? t.rows * t.cols * static_cast<int64_t>(sizeof(float)) : static_cast<int64_t>(t.nbytes);
  }
  return bytes;
}

CompactEngine load_compact_engine(const std::string& path, const RuntimeOptions& options) {
  auto opened = std::make_shared<format::CompactFile>(format::CompactFile::open(path));
  const std::string where = "'" + path + "'";
  const std::optional<layout::ElasticMeta> elastic_meta = layout::ElasticMeta::from_json(opened->metadata(), where);
  std::optional<int64_t> budget;
  if (options.memory_budget) budget = options.memory_budget->resolve(elastic_meta ? elastic_meta->dense_fp16_bytes : 0);
  const int64_t fixed = non_elastic_resident_bytes(*opened);
  std::optional<ElasticSelection> elastic;
  if (elastic_meta) {
    const int64_t n_layer = format::dims_from_json(opened->dims()).n_layer;
    elastic = select_elastic_forms(*opened, *elastic_meta, fixed, budget, n_layer, options.stream);
    apply_elastic_selection(*opened, *elastic);
  } else if (options.stream) {
    throw UsageError(where + " is not an elastic file: only an elastic file's layers can be streamed");
  } else if (budget && fixed > *budget) {
    throw ResourceError(where + " needs " + std::to_string(fixed) + " resident weight bytes, above the memory budget of " +
                        std::to_string(*budget) + " (an elastic file, made by the elastic pass, can fit smaller budgets)");
  }
  std::shared_ptr<const format::CompactFile> file = opened;
  auto stats = std::make_shared<RuntimeStats>();
  std::shared_ptr<LayerStream> stream;
  if (elastic && elastic->streaming) {
    const StreamingPlan& sp = *elastic->streaming;
    stats->stream = std::make_shared<StreamStats>();
    stream = std::make_shared<LayerStream>(file, sp.first_streamed_layer, format::dims_from_json(file->dims()).n_layer,
                                           sp.slot_bytes, options.stream_options, stats->residency.other, stats->stream);
    for (size_t i = 0; i < elastic->meta.items.size(); ++i) {
      const layout::ElasticItem& item = elastic->meta.items[i];
      const std::optional<int64_t> layer = layout::layer_index(item.name);
      if (!layer || *layer < sp.first_streamed_layer) continue;
      for (const std::string& t : item.choices[elastic->chosen[i]].tensors) stream->add(layout::elastic_logical(t), *layer);
    }
  }
  const Model small = decode_small_tensors(*file, *stats->residency.other);

  // The big parts stay encoded; the on-demand ones read rows as tokens need them.
  WeightProviders providers;
  providers.matrix = make_projection_provider(file, stats->residency, stream);
  providers.channel_mix = make_sparse_ffn_provider(
      file, {options.neuron_cache_fraction, options.audit_sparsity, options.neuron_trace}, stats);
  providers.head = make_two_level_head_provider(
      file, {options.head_p, options.head_min_clusters, options.head_max_clusters, options.head_cache_rows}, stats);
  providers.embedding = make_embedding_provider(file, options.embedding_cache_rows, stats);

  CompactEngine out;
  EngineOptions engine_options;
  engine_options.threads = options.threads;
  out.engine = std::make_unique<Engine>(build_weights(small, std::move(providers)), engine_options);
  out.residency = stats->residency.total;
  out.reads = file->read_stats();
  if (elastic && budget) {
    // The speed the plan will run at, said before it runs (its probe reads are not counted above).
    // Bytes multiplied per token: the resident forms, and the streamed layers instead of the slots.
    const int64_t per_token_bytes =
        elastic->elastic_bytes +
        (elastic->streaming ? elastic->streaming->streamed_bytes_per_token - 2 * elastic->streaming->slot_bytes : 0);
    MatvecTimer timer(options.threads, per_token_bytes);
    elastic->predicted_speed = predict_elastic_speed(*file, format::dims_from_json(file->dims()).n_layer, timer,
                                                     measure_engine_overheads(small, options.threads), stream.get(),
                                                     options.stream_options);
  }
  if (stream) stream->start();
  out.metadata = file->metadata();
  out.stats = stats;
  out.elastic = std::move(elastic);
  out.budget_bytes = budget;
  if (budget && out.residency->peak() > *budget) {
    // The accounting above bounds what building holds; reaching this is a bug, not bad input.
    throw Error(where + ": building the engine held " + std::to_string(out.residency->peak()) +
                " resident weight bytes, above the memory budget of " + std::to_string(*budget),
                kExitInternal);
  }
  return out;
}

}  // namespace rwkvlite
