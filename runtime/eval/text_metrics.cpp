#include "runtime/eval/text_metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "runtime/core/error.h"
#include "runtime/eval/sampling.h"

namespace rwkvlite {
namespace {

// Log-softmax in double: the per-position bits and KL are summed over 10^5+ positions, where
// float accumulation would drift in the reported digits.
void log_softmax(const float* logits, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  double mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<double>(logits[i]) - lse;
}

int64_t argmax(const float* v, int64_t n) { return std::max_element(v, v + n) - v; }

}  // namespace

TextMetrics evaluate_text(TokenPredictor& model, const std::vector<int32_t>& tokens,
                          const std::vector<int32_t>& token_bytes, TokenPredictor* reference,
                          const EvalOptions& options) {
  if (tokens.size() < 2) throw InputError("the text is too short to evaluate (needs at least 2 tokens)");
  if (token_bytes.size() != tokens.size()) throw Error("evaluate_text: token_bytes size mismatch", kExitInternal);
  const int64_t V = model.vocab_size();
  if (reference && reference->vocab_size() != V) {
    throw UsageError("the reference model has vocabulary " + std::to_string(reference->vocab_size()) +
                     ", the evaluated model " + std::to_string(V));
  }
  model.reset();
  if (reference) reference->reset();
  std::vector<float> logits(static_cast<size_t>(V)), ref_logits(static_cast<size_t>(V));
  std::vector<double> lp, ref_lp;
  TextMetrics m;
  m.has_reference = reference != nullptr;
  int64_t correct = 0, agree = 0;
  double kl_sum = 0, ref_bits = 0, model_seconds = 0;
  const int64_t total = static_cast<int64_t>(tokens.size()) - 1;
  for (int64_t i = 0; i < total; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    model.feed(tokens[i], logits.data());
    model_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int32_t next = tokens[i + 1];
    require_finite_logits(logits.data(), V, "the model's", "token " + std::to_string(i));
    log_softmax(logits.data(), V, lp);
    m.total_bits += -lp[next] / std::log(2.0);
    const int64_t top = argmax(logits.data(), V);
    correct += top == next;
    if (reference) {
      reference->feed(tokens[i], ref_logits.data());
      require_finite_logits(ref_logits.data(), V, "the reference model's", "token " + std::to_string(i));
      log_softmax(ref_logits.data(), V, ref_lp);
      ref_bits += -ref_lp[next] / std::log(2.0);
      agree += argmax(ref_logits.data(), V) == top;
      double kl = 0;
      for (int64_t j = 0; j < V; ++j) kl += std::exp(ref_lp[j]) * (ref_lp[j] - lp[j]);
      kl_sum += kl;
    }
    m.bytes_scored += token_bytes[i + 1];
    if (options.progress && options.progress_every > 0 && (i + 1) % options.progress_every == 0) {
      options.progress(i + 1, total);
    }
  }
  m.tokens_scored = total;
  m.bits_per_byte = m.bytes_scored ? m.total_bits / static_cast<double>(m.bytes_scored) : 0;
  m.top1_accuracy = static_cast<double>(correct) / static_cast<double>(total);
  if (reference) {
    m.top1_agreement = static_cast<double>(agree) / static_cast<double>(total);
    m.kl_mean = kl_sum / static_cast<double>(total);
    m.reference_bits_per_byte = m.bytes_scored ? ref_bits / static_cast<double>(m.bytes_scored) : 0;
  }
  m.seconds = model_seconds;
  m.tokens_per_second = model_seconds > 0 ? static_cast<double>(total) / model_seconds : 0;
  return m;
}

}  // namespace rwkvlite
