// Teacher-forced evaluation of a model on a token sequence, optionally against a reference.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/eval/token_predictor.h"

namespace rwkvlite {

struct TextMetrics {
  int64_t tokens_scored = 0;      // positions whose next token was predicted
  int64_t bytes_scored = 0;       // bytes of the scored tokens (the denominator of bits per byte)
  double total_bits = 0;          // sum of -log2 p(next token)
  double bits_per_byte = 0;
  double top1_accuracy = 0;       // fraction of positions whose argmax is the actual next token
  // Against a reference model (only when one is given):
  bool has_reference = false;
  double top1_agreement = 0;      // fraction of positions where both models' argmax agree
  double kl_mean = 0;             // mean over positions of KL(reference || model), in nats
  double reference_bits_per_byte = 0;
  double seconds = 0;             // wall time of the model's forward passes
  double tokens_per_second = 0;
};

struct EvalOptions {
  // Called every `progress_every` positions with (done, total); 0 disables.
  int64_t progress_every = 0;
  std::function<void(int64_t, int64_t)> progress;
};

// Scores tokens[1..n) given the preceding tokens, from a fresh state. `token_bytes[i]` is the
// byte length of token i, so bits per byte compares byte-level and tokenized models.
TextMetrics evaluate_text(TokenPredictor& model, const std::vector<int32_t>& tokens,
                          const std::vector<int32_t>& token_bytes, TokenPredictor* reference = nullptr,
                          const EvalOptions& options = {});

}  // namespace rwkvlite
