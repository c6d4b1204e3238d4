// A hook for watching channel-mix activations during evaluation (calibration of sparse FFN
// predictors and activation statistics).
#pragma once

#include <cstdint>
#include <functional>

namespace rwkvlite {

// What one layer's channel mix saw for a block of consecutive tokens. Pointers are valid only
// during the callback.
struct ChannelMixActivations {
  int64_t layer = 0;
  int64_t first_position = 0;  // index of the block's first token within the evaluation call
  int64_t n_tokens = 0;        // rows in the arrays below (1 in token mode)
  int64_t n_embd = 0;          // D
  int64_t ffn_size = 0;        // F
  const float* key_input = nullptr;   // n_tokens x D: x_k, the token-shifted input to the key matrix
  const float* key_preact = nullptr;  // n_tokens x F: x_k · K^T, before relu and squaring
};

// Called once per layer per block of tokens, in layer order within a block. In token mode a
// block is the single token; in sequence mode blocks follow each other in token order.
using ChannelMixObserver = std::function<void(const ChannelMixActivations&)>;

// Sees the head's input (the final hidden state after ln_out, n_tokens x D) of every token of a
// block, for calibrating a clustered head. Pointers are valid only during the callback.
struct HiddenStates {
  int64_t first_position = 0;
  int64_t n_tokens = 0;
  int64_t n_embd = 0;
  const float* normed = nullptr;
};
using HiddenObserver = std::function<void(const HiddenStates&)>;

}  // namespace rwkvlite
