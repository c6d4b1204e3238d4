#include "tools/common/generate.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/eval/sampling.h"

namespace rwkvlite::tools {

CLI::Option* GenerateArgs::add_to(CLI::App& cmd) {
  auto* p = cmd.add_option("--prompt", prompt, "Prompt text to continue");
  cmd.add_option("-n,--tokens", tokens, "Tokens to generate")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24))
      ->capture_default_str();
  cmd.add_option("--temperature", temperature, "Sampling temperature (0: greedy)")->capture_default_str();
  cmd.add_option("--top-p", top_p, "Nucleus sampling mass")->capture_default_str();
  cmd.add_option("--seed", seed, "Sampling seed")->capture_default_str();
  return p;
}

void generate(TokenPredictor& model, const Tokenizer& tokenizer, const GenerateArgs& args, std::FILE* out) {
  const std::vector<int32_t> prompt = tokenizer.encode(args.prompt);
  if (prompt.empty()) throw UsageError("--prompt is empty");
  Sampler sampler(args.seed, args.temperature, args.top_p);
  std::vector<float> logits(static_cast<size_t>(model.vocab_size()));
  model.reset();
  model.feed_sequence(prompt.data(), prompt.size(), logits.data());
  // Checked before anything is printed: a model whose logits overflow gets its error alone.
  require_finite_logits(logits.data(), model.vocab_size(), "the model's", "the end of the prompt");
  std::fwrite(args.prompt.data(), 1, args.prompt.size(), out);
  // World heads have 65,536 rows but the vocabulary assigns ids only up to 65,529: never
  // sample an id the tokenizer cannot turn into bytes.
  const int64_t sampled_ids = std::min<int64_t>(model.vocab_size(), tokenizer.vocab_size());
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < args.tokens; ++i) {
    if (i > 0) require_finite_logits(logits.data(), model.vocab_size(), "the model's", "generated token " + std::to_string(i));
    const int32_t next = sampler.sample(logits.data(), sampled_ids);
    const std::string& bytes = tokenizer.token_bytes(next);
    std::fwrite(bytes.data(), 1, bytes.size(), out);
    std::fflush(out);  // a person watching sees each token as it comes
    model.feed(next, logits.data());
  }
  std::fputc('\n', out);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("generated {} tokens in {:.2f} s ({:.1f} tokens/s)", args.tokens, s, s > 0 ? args.tokens / s : 0.0);
}

}  // namespace rwkvlite::tools
