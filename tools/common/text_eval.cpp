#include "tools/common/text_eval.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "runtime/core/file_io.h"
#include "runtime/core/resource_usage.h"
#include "runtime/eval/text_metrics.h"
#include "tools/common/run_main.h"
#include "tools/common/runtime_report.h"
#include "tools/common/timed_predictor.h"

namespace rwkvlite::tools {
namespace {

using nlohmann::ordered_json;

std::vector<int32_t> byte_lengths(const Tokenizer& tokenizer, const std::vector<int32_t>& tokens) {
  std::vector<int32_t> lengths;
  lengths.reserve(tokens.size());
  for (int32_t t : tokens) lengths.push_back(static_cast<int32_t>(tokenizer.token_bytes(t).size()));
  return lengths;
}

TextMetrics score(TimedPredictor& model, TokenPredictor* reference, const std::vector<int32_t>& tokens,
                  const std::vector<int32_t>& lengths) {
  EvalOptions options;
  options.progress_every = std::max<int64_t>(1, static_cast<int64_t>(tokens.size()) / 10);
  options.progress = [](int64_t done, int64_t total) {
    spdlog::info("eval {:3.0f}% ({}/{} tokens)", 100.0 * done / total, done, total);
  };
  return evaluate_text(model, tokens, lengths, reference, options);
}

// The keys in the order of the header's list. Scaling by a power of two is exact, so
// bits_per_byte per text byte is the same double however the factor is applied.
ordered_json report(const ModelArgs& args, const RunnableModel& model, const std::string& reference_path,
                    const TextArgs& text, uint64_t fed_bytes, const std::string& tokenizer, const TextMetrics& m,
                    const TimedPredictor& timed) {
  const double per_text_byte = text.fed_bytes_per_text_byte();
  ordered_json j;
  j["model"] = args.path;
  j["arch"] = arch_name(model.arch);
  j["reference"] = reference_path;
  j["text"] = text.resolved_path();
  j["text_offset"] = text.start();
  j["text_bytes"] = fed_bytes;
  j["interleave_zeros"] = text.interleave_zeros;
  j["tokenizer"] = tokenizer;
  j["tokens_scored"] = m.tokens_scored;
  j["bits_per_byte"] = m.bits_per_byte * per_text_byte;
  j["top1_accuracy"] = m.top1_accuracy;
  j["top1_agreement"] = m.has_reference ? ordered_json(m.top1_agreement) : ordered_json(nullptr);
  j["kl_mean"] = m.has_reference ? ordered_json(m.kl_mean) : ordered_json(nullptr);
  j["reference_bits_per_byte"] =
      m.has_reference ? ordered_json(m.reference_bits_per_byte * per_text_byte) : ordered_json(nullptr);
  j["peak_resident_weight_bytes"] = model.peak_resident_weight_bytes();
  j["memory_budget_bytes"] = model.budget_bytes ? ordered_json(*model.budget_bytes) : ordered_json(nullptr);
  if (model.elastic) j["elastic"] = model.elastic->to_json();
  j["peak_rss_bytes"] = peak_rss_bytes();
  j["file_bytes"] = file_size_or_throw(args.path);
  j["tokens_per_second"] = m.tokens_per_second;
  j["ms_per_token_median"] = timed.quantile_ms(0.5);
  j["ms_per_token_p90"] = timed.quantile_ms(0.9);
  j["load_seconds"] = model.load_seconds;
  j["threads"] = args.threads;
  if (model.stats) add_runtime_stats(*model.stats, j);
  if (j.contains("stream") && timed.feeds() > 0 && m.tokens_per_second > 0) {
    // The share of the forward passes' wall time spent waiting for streamed layers.
    const double forward_seconds = static_cast<double>(timed.feeds()) / m.tokens_per_second;
    j["stream"]["stall_fraction"] = j["stream"]["stall_seconds"].get<double>() / forward_seconds;
    j["stream"]["bytes_read_per_token"] = j["stream"]["bytes_read"].get<double>() / static_cast<double>(timed.feeds());
  }
  return j;
}

}  // namespace

void EvalArgs::add_to(CLI::App& cmd) {
  cmd.add_option("--reference", reference_path,
                 "Dense (or compact) reference model: adds top1_agreement, kl_mean and reference_bits_per_byte");
  cmd.add_option("--json", json_path, "Also write the report as JSON to this file ('-': the JSON alone on stdout)")->check(output_file());
}

ordered_json evaluate_on_text(const ModelArgs& model_args, RunnableModel& model, const Tokenizer& tokenizer,
                              const TextArgs& text, const std::string& reference_path) {
  const std::string bytes = text.read();  // before the reference: a bad text range fails fast
  const std::vector<int32_t> tokens = tokenizer.encode(bytes);
  RunnableModel reference;
  if (!reference_path.empty()) {
    ModelArgs reference_args = model_args;
    reference_args.path = reference_path;
    reference = reference_args.load_runnable(RuntimeOptions{});  // as stored, without this run's overrides
  }
  spdlog::info("evaluating {} tokens ({} bytes of {} from offset {}) with the {} tokenizer", tokens.size(),
               bytes.size(), text.resolved_path(), text.start(), tokenizer.name());
  TimedPredictor timed(*model.predictor);  // times the model's feeds only, not the reference's
  const TextMetrics m = score(timed, reference.predictor.get(), tokens, byte_lengths(tokenizer, tokens));
  return report(model_args, model, reference_path, text, bytes.size(), tokenizer.name(), m, timed);
}

}  // namespace rwkvlite::tools
