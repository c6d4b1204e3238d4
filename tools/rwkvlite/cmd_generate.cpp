// rwkvlite generate MODEL --prompt TEXT -n N [--temperature T --top-p P --seed S]
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "tools/rwkvlite/cli_common.h"
#include "tools/rwkvlite/commands.h"
#include "runtime/core/error.h"
#include "runtime/eval/dense_predictor.h"
#include "runtime/eval/sampling.h"

namespace rwkvlite::cli {

void register_generate(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("generate", "Continue a prompt by sampling from a dense model");
  auto args = std::make_shared<ModelArgs>();
  struct Opts {
    std::string prompt;
    int64_t n = 100;
    float temperature = 1.0f, top_p = 0.85f;
    uint64_t seed = 42;
  };
  auto o = std::make_shared<Opts>();
  args->add_to(*cmd, true);
  cmd->add_option("--prompt", o->prompt, "Prompt text")->required();
  cmd->add_option("-n,--tokens", o->n, "Tokens to generate")->check(CLI::Range(int64_t{0}, int64_t{1} << 24))->capture_default_str();
  cmd->add_option("--temperature", o->temperature, "0 for greedy")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "Nucleus sampling mass")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Sampling seed")->capture_default_str();
  cmd->callback([&action, args, o] {
    action = [args, o] {
      const Model model = args->load();
      const auto predictor = make_dense_predictor(model, args->threads);
      const auto tokenizer = tokenizer_for(model.dims.n_vocab, args->tokenizer);
      Sampler sampler(o->seed, o->temperature, o->top_p);
      const std::vector<int32_t> prompt = tokenizer->encode(o->prompt);
      if (prompt.empty()) throw UsageError("--prompt is empty");
      std::vector<float> logits(static_cast<size_t>(predictor->vocab_size()));
      predictor->reset();
      for (int32_t t : prompt) predictor->feed(t, logits.data());
      std::fwrite(o->prompt.data(), 1, o->prompt.size(), stdout);
      const auto t0 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < o->n; ++i) {
        // World heads have 65,536 rows but the vocabulary assigns ids only up to 65,529: never
        // sample an id the tokenizer cannot turn into bytes.
        const int64_t n = std::min<int64_t>(predictor->vocab_size(), tokenizer->vocab_size());
        const int32_t next = sampler.sample(logits.data(), n);
        const std::string& bytes = tokenizer->token_bytes(next);
        std::fwrite(bytes.data(), 1, bytes.size(), stdout);
        std::fflush(stdout);
        predictor->feed(next, logits.data());
      }
      std::fputc('\n', stdout);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      spdlog::info("generated {} tokens in {:.2f} s ({:.1f} tokens/s)", o->n, s, s > 0 ? o->n / s : 0.0);
      return 0;
    };
  });
}

}  // namespace rwkvlite::cli
