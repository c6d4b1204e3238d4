// rwkvlite eval MODEL [--text FILE] [--max-bytes N] [--json FILE]: teacher-forced bits per
// byte, top-1 accuracy, speed, load time and peak RSS of a dense model.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>

#include "tools/rwkvlite/cli_common.h"
#include "tools/rwkvlite/commands.h"
#include "runtime/core/resource_usage.h"
#include "runtime/eval/dense_predictor.h"
#include "runtime/eval/text_metrics.h"
#include "runtime/eval/text_source.h"

namespace rwkvlite::cli {

void register_eval(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("eval", "Bits per byte and top-1 accuracy of a dense model on text");
  auto args = std::make_shared<ModelArgs>();
  auto text = std::make_shared<TextArgs>();
  auto json_path = std::make_shared<std::string>();
  args->add_to(*cmd, true);
  text->add_to(*cmd, bundled_text_path(), kHeldOutStart);
  cmd->add_option("--json", *json_path, "Also write the report as JSON to this file ('-' for stdout)");
  cmd->callback([&action, args, text, json_path] {
    action = [args, text, json_path] {
      const auto t0 = std::chrono::steady_clock::now();
      const Model model = args->load();
      const auto predictor = make_dense_predictor(model, args->threads);
      const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const auto tokenizer = tokenizer_for(model.dims.n_vocab, args->tokenizer);
      const std::string bytes = text->read();
      const std::vector<int32_t> tokens = tokenizer->encode(bytes);
      std::vector<int32_t> token_bytes;
      token_bytes.reserve(tokens.size());
      for (int32_t t : tokens) token_bytes.push_back(static_cast<int32_t>(tokenizer->token_bytes(t).size()));
      spdlog::info("evaluating {} tokens ({} bytes of {} from offset {}) with the {} tokenizer", tokens.size(),
                   bytes.size(), text->path, text->offset, tokenizer->name());
      EvalOptions opts;
      opts.progress_every = std::max<int64_t>(1, static_cast<int64_t>(tokens.size()) / 10);
      opts.progress = [](int64_t done, int64_t total) {
        spdlog::info("eval {:3.0f}% ({}/{} tokens)", 100.0 * done / total, done, total);
      };
      const TextMetrics m = evaluate_text(*predictor, tokens, token_bytes, nullptr, opts);
      // With interleaved zeros every text byte is two fed bytes; report bits per text byte.
      const double bpb = text->interleave_zeros ? m.total_bits / (m.bytes_scored / 2.0) : m.bits_per_byte;
      nlohmann::ordered_json j;
      j["model"] = args->path;
      j["arch"] = arch_name(model.arch);
      j["text"] = text->path;
      j["text_offset"] = text->offset;
      j["text_bytes"] = bytes.size();
      j["interleave_zeros"] = text->interleave_zeros;
      j["tokenizer"] = tokenizer->name();
      j["tokens_scored"] = m.tokens_scored;
      j["bits_per_byte"] = bpb;
      j["top1_accuracy"] = m.top1_accuracy;
      j["tokens_per_second"] = m.tokens_per_second;
      j["load_seconds"] = load_seconds;
      j["threads"] = args->threads;
      j["peak_rss_bytes"] = peak_rss_bytes();
      std::printf("model              %s (RWKV %s)\n", args->path.c_str(), arch_name(model.arch));
      std::printf("text               %s, %zu bytes from offset %llu%s\n", text->path.c_str(), bytes.size(),
                  (unsigned long long)text->offset, text->interleave_zeros ? " (interleaved with 0x00)" : "");
      std::printf("bits_per_byte      %.4f\n", bpb);
      std::printf("top1_accuracy      %.4f\n", m.top1_accuracy);
      std::printf("tokens_per_second  %.1f (%d threads)\n", m.tokens_per_second, args->threads);
      std::printf("load_seconds       %.3f\n", load_seconds);
      std::printf("peak_rss           %s\n", human_bytes(static_cast<double>(peak_rss_bytes())).c_str());
      if (!json_path->empty()) write_json_file(*json_path, j.dump(2));
      return 0;
    };
  });
}

}  // namespace rwkvlite::cli
