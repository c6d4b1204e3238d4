// The dense RWKV inference engine (v4, v5.1, v5.2, v6, v7), reproducing rwkv.cpp's logits.
//
//   Engine engine(read_rwkvcpp(path), /*threads=*/2);
//   State state = engine.new_state();
//   std::vector<float> logits(engine.vocab_size());
//   engine.eval_sequence(prompt.data(), prompt.size(), state, logits.data());
//   engine.eval_token(next, state, logits.data());
//
// An Engine is not safe for concurrent use (it owns one thread pool and one set of scratch
// buffers); States are plain values and may be copied freely. Use one Engine per thread of
// control, or serialise calls.
//
// Usage errors (bad token ids, a state of another model) are detected before anything is
// changed. If evaluation itself fails part-way (out of memory, an exception from a
// ChannelMixObserver or from a custom Projection), the state is left partially updated and
// should be discarded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/core/model.h"
#include "runtime/engine/observer.h"
#include "runtime/engine/scratch.h"
#include "runtime/engine/state.h"
#include "runtime/engine/thread_pool.h"
#include "runtime/engine/weights.h"

namespace rwkvlite {

struct EngineOptions {
  int threads = 1;
  // Smallest amount of work (multiply-adds) handed to a thread of its own; see ThreadPool.
  int64_t min_work_per_part = ThreadPool::kDefaultMinWorkPerPart;
  // eval_sequence processes tokens in blocks of at most this many, bounding scratch memory
  // (about 20 x D floats per token). Results do not depend on it.
  int64_t max_block = 64;
};

class Engine {
 public:
  // Dense FP32 weights built from a canonical model: copied from an lvalue, moved out of an
  // rvalue (which is then left with emptied tensors), so Engine(read_rwkvcpp(path)) never holds
  // the weights twice.
  explicit Engine(const Model& model, int threads = 1);
  Engine(const Model& model, const EngineOptions& options);
  explicit Engine(Model&& model, int threads = 1);
  Engine(Model&& model, const EngineOptions& options);
  // Any weights, e.g. with compressed projections; validated (UsageError if inconsistent).
  Engine(EngineWeights weights, const EngineOptions& options);

  State new_state() const;

  // Feeds one token. Writes vocab_size() logits unless `logits` is null (which skips the head).
  // Throws UsageError for a token outside [0, vocab_size()) or a state of another model,
  // leaving the state unchanged.
  void eval_token(int32_t token, State& state, float* logits, const ChannelMixObserver& observer = {});

  // Feeds n tokens; the final state and last token's logits equal those of n eval_token calls
  // (projections are batched over blocks of tokens, with identical per-token arithmetic).
  // n == 0 leaves the state unchanged and requires logits to be null.
  // A HiddenObserver sees every token's final hidden state (computed only when one is given).
  void eval_sequence(const int32_t* tokens, size_t n, State& state, float* last_logits,
                     const ChannelMixObserver& observer = {}, const HiddenObserver& hidden = {});

  int64_t vocab_size() const { return weights_.dims.n_vocab; }
  int64_t n_embd() const { return weights_.dims.n_embd; }
  int64_t n_layer() const { return weights_.dims.n_layer; }
  ArchVersion arch() const { return weights_.arch; }
  const ModelDims& dims() const { return weights_.dims; }
  int threads() const { return pool_->threads(); }
  const EngineWeights& weights() const { return weights_; }

 private:
  void check_call(const int32_t* tokens, size_t n, const State& state) const;
  // Evaluates one block of n tokens (n <= max_block); logits of the last one if requested.
  void eval_block(const int32_t* tokens, int64_t n, State& state, float* logits, const ChannelMixObserver* observer,
                  const HiddenObserver* hidden, int64_t first_position);

  EngineWeights weights_;
  EngineOptions options_;
  std::unique_ptr<ThreadPool> pool_;
  Scratch scratch_;
};

}  // namespace rwkvlite
