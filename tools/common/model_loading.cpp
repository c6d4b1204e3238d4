#include "tools/common/model_loading.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "converters/model_io.h"
#include "runtime/core/error.h"
#include "runtime/engine/engine.h"
#include "runtime/eval/dense_predictor.h"

namespace rwkvlite::tools {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void log_loaded(const std::string& path, const std::string& kind, const Engine& engine, double seconds) {
  const ModelDims& d = engine.weights().dims;
  spdlog::info("loaded {}: {}, RWKV {}, {} layers x {}, vocab {}, in {:.3f} s", path, kind, arch_name(engine.arch()),
               d.n_layer, d.n_embd, d.n_vocab, seconds);
}

}  // namespace

int64_t RunnableModel::peak_resident_weight_bytes() const { return residency ? residency->peak() : dense_weight_bytes; }

RunnableModel load_runnable_model(const std::string& path, const RuntimeOptions& runtime, float ln_x_eps) {
  const auto t0 = std::chrono::steady_clock::now();
  RunnableModel out;
  std::unique_ptr<Engine> engine;
  std::string kind;
  if (is_compact_file(path)) {
    CompactEngine ce = load_compact_engine(path, runtime);
    engine = std::move(ce.engine);
    out.residency = ce.residency;
    out.stats = ce.stats;
    out.budget_bytes = ce.budget_bytes;
    out.elastic = std::move(ce.elastic);
    kind = out.elastic ? "elastic compact file" : "compact file";
    if (out.elastic) {
      const ElasticSelection& e = *out.elastic;
      spdlog::info("elastic: {} matrices in {} bytes (+{} not elastic) for a budget of {}; predicted KL {:.5f} bits/byte",
                   e.meta.items.size(), e.elastic_bytes, e.fixed_bytes,
                   e.budget_bytes ? std::to_string(*e.budget_bytes) + " bytes" : std::string("none (largest forms)"),
                   e.predicted_kl_bits_per_byte);
      if (e.predicted_speed) {
        const SpeedPrediction& p = *e.predicted_speed;
        spdlog::info("elastic: predicted {:.0f} tokens/s ({:.3f} ms a token: {:.3f} computing, {:.3f} reading, stall "
                     "fraction {:.2f})",
                     p.tokens_per_second(), 1e3 * p.seconds_per_token, 1e3 * p.compute_seconds, 1e3 * p.read_seconds,
                     p.stall_fraction());
      }
    }
  } else {
    if (runtime.stream) throw UsageError("'" + path + "' is a dense model: only an elastic compact file's layers can be streamed");
    LoadOptions options;
    options.ln_x_eps = ln_x_eps;
    Model m = load_model(path, options);
    kind = m.source_format;
    const int64_t dense_fp16_bytes = m.parameter_count() * 2;
    engine = std::make_unique<Engine>(std::move(m), runtime.threads);
    out.dense_weight_bytes = weights_storage_bytes(engine->weights());
    if (runtime.memory_budget) {
      out.budget_bytes = runtime.memory_budget->resolve(dense_fp16_bytes);
      if (out.dense_weight_bytes > *out.budget_bytes)
        throw ResourceError("'" + path + "' holds " + std::to_string(out.dense_weight_bytes) +
                            " weight bytes dense, above the memory budget of " + std::to_string(*out.budget_bytes) +
                            " (compress it, or make an elastic file with the elastic pass)");
    }
  }
  out.vocab = engine->vocab_size();
  out.arch = engine->arch();
  out.load_seconds = seconds_since(t0);
  log_loaded(path, kind, *engine, out.load_seconds);
  out.predictor = make_engine_predictor(std::move(engine));
  return out;
}

Model load_dense_model(const std::string& path, float ln_x_eps) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadOptions options;
  options.ln_x_eps = ln_x_eps;
  Model m = load_model(path, options);
  spdlog::info("loaded {}: {} RWKV {}, {} layers x {}, vocab {}, {:.1f} M parameters in {:.3f} s", path,
               m.source_format, arch_name(m.arch), m.dims.n_layer, m.dims.n_embd, m.dims.n_vocab,
               m.parameter_count() / 1e6, seconds_since(t0));
  return m;
}

}  // namespace rwkvlite::tools
