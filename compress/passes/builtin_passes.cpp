#include "compress/passes/builtin_passes.h"

#include "compress/passes/cluster_head_pass.h"
#include "compress/passes/elastic_pass.h"
#include "compress/passes/fold_embedding_pass.h"
#include "compress/passes/lowrank_pass.h"
#include "compress/passes/neuron_major_pass.h"
#include "compress/passes/quantize_pass.h"
#include "compress/passes/sparsity_predictor_pass.h"

namespace rwkvlite {
namespace {

// The factory of a pass whose constructor takes its Options, read from the [[pass]] table.
template <typename PassT, typename OptionsT>
PassFactory factory_of() {
  return [](OptionReader& reader) -> std::unique_ptr<Pass> { return std::make_unique<PassT>(OptionsT::read(reader)); };
}

}  // namespace

void add_builtin_passes(PassRegistry& registry) {
  registry.add("lowrank", factory_of<LowRankPass, LowRankOptions>());
  registry.add("quantize", factory_of<QuantizePass, QuantizeOptions>());
  registry.add("neuron_major", factory_of<NeuronMajorPass, NeuronMajorOptions>());
  registry.add("sparsity_predictor", factory_of<SparsityPredictorPass, SparsityPredictorOptions>());
  registry.add("fold_embedding", factory_of<FoldEmbeddingPass, FoldEmbeddingOptions>());
  registry.add("cluster_head", factory_of<ClusterHeadPass, ClusterHeadOptions>());
  registry.add("elastic", factory_of<ElasticPass, ElasticOptions>());
}

const PassRegistry& builtin_passes() {
  static const PassRegistry registry = [] {
    PassRegistry r;
    add_builtin_passes(r);
    return r;
  }();
  return registry;
}

}  // namespace rwkvlite
