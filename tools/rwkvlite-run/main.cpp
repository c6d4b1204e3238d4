// rwkvlite-run: the bundled minimal runtime. Runs a compact (or dense, non-.pth) model on text
// or a prompt and reports accuracy and memory. Does not link LibTorch.
//
//   rwkvlite-run MODEL [--text FILE] [--reference DENSE_MODEL] [--json FILE]
//   rwkvlite-run MODEL --prompt TEXT -n N
//
// JSON keys (stable, snake_case): bits_per_byte, top1_accuracy, top1_agreement, kl_mean,
// reference_bits_per_byte, peak_resident_weight_bytes, peak_resident_bytes_by_part, peak_rss_bytes,
// file_bytes, tokens_per_second, tokens_scored, load_seconds, model, reference, text,
// text_offset, text_bytes, threads, and for files with on-demand parts sparse_ffn,
// clustered_head, embedding (README, "rwkvlite-run").
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "converters/model_io.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "tools/common/run_main.h"
#include "runtime/core/resource_usage.h"
#include "runtime/core/version.h"
#include "runtime/engine/engine.h"
#include "runtime/eval/dense_predictor.h"
#include "runtime/eval/sampling.h"
#include "runtime/eval/text_metrics.h"
#include "runtime/eval/text_source.h"
#include "runtime/store/compact_model.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

using namespace rwkvlite;

struct LoadedModel {
  std::unique_ptr<TokenPredictor> predictor;
  std::shared_ptr<ResidencyCounter> residency;  // null for dense models (their size is fixed)
  std::shared_ptr<RuntimeStats> stats;          // compact files only
  int64_t dense_weight_bytes = 0;
  int64_t vocab = 0;
};

LoadedModel load_any(const std::string& path, const RuntimeOptions& options, float ln_x_eps) {
  LoadedModel out;
  if (is_compact_file(path)) {
    CompactEngine ce = load_compact_engine(path, options);
    out.vocab = ce.engine->vocab_size();
    out.residency = ce.residency;
    out.stats = ce.stats;
    out.predictor = make_engine_predictor(std::move(ce.engine));
    return out;
  }
  LoadOptions lo;
  lo.ln_x_eps = ln_x_eps;
  Model m = load_model(path, lo);
  auto engine = std::make_unique<Engine>(std::move(m), options.threads);
  out.vocab = engine->vocab_size();
  out.dense_weight_bytes = weights_storage_bytes(engine->weights());
  out.predictor = make_engine_predictor(std::move(engine));
  return out;
}

double ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }

// The report of the on-demand parts: per-layer and total sparse channel mix, clustered head,
// row embedding. Keys are documented in README ("rwkvlite-run").
void add_runtime_stats(const RuntimeStats& s, nlohmann::ordered_json& j) {
  nlohmann::ordered_json by_part;
  by_part["ffn"] = s.residency.ffn->peak();
  by_part["head"] = s.residency.head->peak();
  by_part["embedding"] = s.residency.embedding->peak();
  by_part["other"] = s.residency.other->peak();
  j["peak_resident_bytes_by_part"] = by_part;
  if (!s.ffn_layers.empty()) {
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    int64_t tokens = 0, selected = 0, width = 0, read = 0, hits = 0, visits = 0, active = 0, active_sel = 0, audited = 0;
    for (const auto& l : s.ffn_layers) {
      nlohmann::ordered_json e;
      e["layer"] = l->layer;
      e["width"] = l->width;
      e["cache_rows"] = l->cache_rows;
      e["has_predictor"] = l->has_predictor;
      e["selected_fraction"] = ratio(l->neurons_selected, l->tokens * l->width);
      e["neurons_read_per_token"] = ratio(l->rows_read, l->tokens);
      e["cache_hit_rate"] = ratio(l->cache_hits, l->cache_hits + l->cache_misses);
      e["peak_resident_bytes"] = l->resident_peak_bytes;
      if (l->audit_tokens > 0) {
        e["recall"] = ratio(l->active_and_selected, l->active);
        e["true_sparsity"] = 1.0 - ratio(l->active, l->audit_tokens * l->width);
      } else {
        e["recall"] = nullptr;
        e["true_sparsity"] = nullptr;
      }
      layers.push_back(e);
      tokens = std::max(tokens, l->tokens);
      selected += l->neurons_selected;
      width += l->width;
      read += l->rows_read;
      hits += l->cache_hits;
      visits += l->cache_hits + l->cache_misses;
      active += l->active;
      active_sel += l->active_and_selected;
      audited += l->audit_tokens * l->width;
    }
    nlohmann::ordered_json ffn;
    ffn["layers"] = layers;
    // Neurons computed (key and value rows touched) per token over all layers, as a fraction
    // of all channel-mix neurons: the share of channel-mix weight bytes one token needs.
    ffn["ffn_weight_fraction_touched_per_token"] = ratio(selected, tokens * width);
    ffn["neurons_read_per_token"] = ratio(read, tokens);
    ffn["cache_hit_rate"] = ratio(hits, visits);
    ffn["recall"] = audited > 0 ? nlohmann::ordered_json(ratio(active_sel, active)) : nlohmann::ordered_json(nullptr);
    ffn["true_sparsity"] = audited > 0 ? nlohmann::ordered_json(1.0 - ratio(active, audited)) : nlohmann::ordered_json(nullptr);
    j["sparse_ffn"] = ffn;
  }
  if (s.head) {
    nlohmann::ordered_json h;
    h["clusters"] = s.head->clusters;
    h["clusters_kept_per_token"] = ratio(s.head->clusters_kept, s.head->calls);
    h["head_rows_read_per_token"] = ratio(s.head->rows_scored, s.head->calls);
    h["head_rows_read_from_file"] = s.head->rows_read;
    h["cache_rows"] = s.head->cache_rows;
    j["clustered_head"] = h;
  }
  if (s.embedding) {
    nlohmann::ordered_json e;
    e["folded"] = s.embedding->folded;
    e["lookups"] = s.embedding->lookups;
    e["rows_read"] = s.embedding->rows_read;
    e["cache_rows"] = s.embedding->cache_rows;
    j["embedding"] = e;
  }
}

int run(int argc, char** argv) {
  CLI::App app{"rwkvlite-run " RWKVLITE_VERSION ": run a compact or dense RWKV model and report accuracy and memory"};
  std::string model_path, reference_path, json_path, prompt, tokenizer_override, log_level = "info";
  std::string text_path = bundled_text_path();
  uint64_t offset = kHeldOutStart, max_bytes = 0, seed = 42;
  int64_t n = 100;
  int threads = 2;
  float temperature = 0.0f, top_p = 0.85f, ln_x_eps = NAN;
  bool interleave = false;
  app.add_option("model", model_path, "Compact file (from rwkvlite compress) or dense rwkv.cpp/safetensors model")->required();
  auto* text_opt = app.add_option("--text", text_path, "Evaluate on this text (default: held-out bundled text)");
  app.add_option("--offset", offset, "First byte of the text (default: 1000000, the held-out split)");
  app.add_option("--max-bytes", max_bytes, "Use at most this many bytes of text (0: to the end)");
  app.add_flag("--interleave-zeros", interleave, "Feed text as c0 00 c1 00 ... (tiny v6 model)");
  auto* prompt_opt = app.add_option("--prompt", prompt, "Generate from this prompt instead of evaluating");
  prompt_opt->excludes(text_opt);
  app.add_option("-n,--tokens", n, "Tokens to generate with --prompt");
  app.add_option("--temperature", temperature, "Sampling temperature (0: greedy)");
  app.add_option("--top-p", top_p, "Nucleus mass");
  app.add_option("--seed", seed, "Sampling seed");
  app.add_option("--reference", reference_path, "Dense reference model: adds top1_agreement and kl_mean");
  app.add_option("--json", json_path, "Write the report as JSON ('-' for stdout)");
  app.add_option("--threads", threads, "Worker threads")->check(CLI::Range(1, 256));
  app.add_option("--tokenizer", tokenizer_override, "bytes | world | vocab path");
  app.add_option("--ln-x-eps", ln_x_eps, "Group-norm epsilon override for dense models");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off");
  RuntimeOptions ro;
  double neuron_cache = 0, head_p = 0;
  int64_t head_min = 0, head_max = 0, head_rows = 0, emb_rows = 0;
  auto* nc_opt = app.add_option("--neuron-cache", neuron_cache,
                                "Fraction of each layer's channel-mix neurons kept in memory (overrides the file)")
                     ->check(CLI::Range(0.0, 1.0));
  auto* hp_opt = app.add_option("--head-p", head_p, "Clustered head: keep clusters until this much probability")
                     ->check(CLI::Range(0.0, 1.0));
  auto* hmin_opt = app.add_option("--head-min-clusters", head_min, "Clustered head: keep at least N clusters")
                       ->check(CLI::PositiveNumber);
  auto* hmax_opt = app.add_option("--head-max-clusters", head_max, "Clustered head: keep at most N clusters")
                       ->check(CLI::PositiveNumber);
  auto* hrows_opt = app.add_option("--head-cache-rows", head_rows,
                                  "Clustered head: head rows kept in memory (default: all that were read)")
                        ->check(CLI::PositiveNumber);
  auto* emb_opt = app.add_option("--embedding-cache-rows", emb_rows, "Embedding rows kept in memory (reads rows on demand)")
                      ->check(CLI::PositiveNumber);
  app.add_flag("--audit-sparsity", ro.audit_sparsity,
               "Also compute every neuron exactly (uncounted copy) to report predictor recall and true sparsity");
  return tools::run_main(app, argc, argv, log_level, [&]() -> int {
  ro.threads = threads;
  if (*nc_opt) ro.neuron_cache_fraction = neuron_cache;
  if (*hp_opt) ro.head_p = head_p;
  if (*hmin_opt) ro.head_min_clusters = head_min;
  if (*hmax_opt) ro.head_max_clusters = head_max;
  if (*hrows_opt) ro.head_cache_rows = head_rows;
  if (*emb_opt) ro.embedding_cache_rows = emb_rows;

  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel model = load_any(model_path, ro, ln_x_eps);
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto tokenizer = tokenizer_for(model.vocab, tokenizer_override);

  if (!prompt.empty()) {
    Sampler sampler(seed, temperature, top_p);
    std::vector<float> logits(static_cast<size_t>(model.vocab));
    model.predictor->reset();
    for (int32_t t : tokenizer->encode(prompt)) model.predictor->feed(t, logits.data());
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    for (int64_t i = 0; i < n; ++i) {
      const int32_t next = sampler.sample(logits.data(), std::min<int64_t>(model.vocab, tokenizer->vocab_size()));
      const std::string& b = tokenizer->token_bytes(next);
      std::fwrite(b.data(), 1, b.size(), stdout);
      model.predictor->feed(next, logits.data());
    }
    std::fputc('\n', stdout);
    return 0;
  }

  std::string text = read_text_range(text_path, offset, max_bytes);
  if (interleave) text = interleave_zero_bytes(text);
  const std::vector<int32_t> tokens = tokenizer->encode(text);
  std::vector<int32_t> token_bytes;
  for (int32_t t : tokens) token_bytes.push_back(static_cast<int32_t>(tokenizer->token_bytes(t).size()));
  LoadedModel reference;
  if (!reference_path.empty()) {
    RuntimeOptions plain;  // the reference runs as stored, without this run's overrides
    plain.threads = threads;
    reference = load_any(reference_path, plain, ln_x_eps);
  }
  spdlog::info("evaluating {} tokens of {} from offset {}", tokens.size(), text_path, offset);
  EvalOptions eo;
  eo.progress_every = std::max<int64_t>(1, static_cast<int64_t>(tokens.size()) / 5);
  eo.progress = [](int64_t done, int64_t total) { spdlog::info("{:3.0f}% ({}/{})", 100.0 * done / total, done, total); };
  const TextMetrics m = evaluate_text(*model.predictor, tokens, token_bytes, reference.predictor.get(), eo);
  const double per_text_byte = interleave ? 2.0 : 1.0;

  nlohmann::ordered_json j;
  j["model"] = model_path;
  j["reference"] = reference_path;
  j["text"] = text_path;
  j["text_offset"] = offset;
  j["text_bytes"] = text.size();
  j["tokens_scored"] = m.tokens_scored;
  j["bits_per_byte"] = m.bits_per_byte * per_text_byte;
  j["top1_accuracy"] = m.top1_accuracy;
  if (m.has_reference) {
    j["top1_agreement"] = m.top1_agreement;
    j["kl_mean"] = m.kl_mean;
    j["reference_bits_per_byte"] = m.reference_bits_per_byte * per_text_byte;
  } else {
    j["top1_agreement"] = nullptr;
    j["kl_mean"] = nullptr;
  }
  j["peak_resident_weight_bytes"] = model.residency ? model.residency->peak() : model.dense_weight_bytes;
  j["peak_rss_bytes"] = peak_rss_bytes();
  j["file_bytes"] = file_size_or_throw(model_path);
  j["tokens_per_second"] = m.tokens_per_second;
  j["load_seconds"] = load_seconds;
  j["threads"] = threads;
  if (model.stats) add_runtime_stats(*model.stats, j);
  // The console shows scalars, and one level of objects as key.member (per-layer arrays are in
  // the JSON only).
  auto print = [](const std::string& k, const nlohmann::ordered_json& v) {
    if (v.is_number_float()) {
      std::printf("%-40s %.6g\n", k.c_str(), v.get<double>());
    } else if (!v.is_array()) {
      std::printf("%-40s %s\n", k.c_str(), v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
    }
  };
  for (const auto& [k, v] : j.items()) {
    if (v.is_object()) {
      for (const auto& [m, w] : v.items()) print(k + "." + m, w);
    } else {
      print(k, v);
    }
  }
  if (!json_path.empty()) {
    const std::string s = j.dump(2) + "\n";
    if (json_path == "-") {
      std::fwrite(s.data(), 1, s.size(), stdout);
    } else {
      AtomicFile f(json_path);
      f.write(s.data(), s.size());
      f.commit();
    }
  }
  return 0;
  });
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
