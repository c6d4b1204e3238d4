#include "runtime/engine/engine.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <variant>

#include "runtime/core/error.h"
#include "runtime/engine/build_weights.h"
#include "runtime/engine/kernels.h"
#include "runtime/engine/layer_forward.h"

namespace rwkvlite {
namespace {


EngineOptions with_threads(int threads) {
  EngineOptions o;
  o.threads = threads;
  return o;
}

}  // namespace

Engine::Engine(const Model& model, int threads) : Engine(model, with_threads(threads)) {}

Engine::Engine(const Model& model, const EngineOptions& options) : Engine(build_dense_weights(model), options) {}

Engine::Engine(Model&& model, int threads) : Engine(std::move(model), with_threads(threads)) {}

Engine::Engine(Model&& model, const EngineOptions& options)
    : Engine(build_dense_weights(std::move(model)), options) {}

Engine::Engine(EngineWeights weights, const EngineOptions& options) : weights_(std::move(weights)), options_(options) {
  validate_weights(weights_);
  if (options_.max_block < 1) throw UsageError("max_block must be at least 1");
  pool_ = std::make_unique<ThreadPool>(options_.threads, options_.min_work_per_part);
}

State Engine::new_state() const { return make_initial_state(weights_.arch, weights_.dims); }

void Engine::check_call(const int32_t* tokens, size_t n, const State& state) const {
  if (n > 0 && !tokens) throw UsageError("eval: null token array");
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab_size()) {
      throw UsageError("token id " + std::to_string(tokens[i]) + (n > 1 ? " at position " + std::to_string(i) : "") +
                       " is outside the vocabulary [0, " + std::to_string(vocab_size()) + ")");
    }
  }
  if (!state_matches(state, weights_.arch, weights_.dims)) {
    throw UsageError("state does not belong to this model (" + std::string(arch_name(weights_.arch)) + ", " +
                     std::to_string(weights_.dims.n_layer) + " layers, width " + std::to_string(weights_.dims.n_embd) +
                     "); create it with Engine::new_state()");
  }
}

void Engine::eval_token(int32_t token, State& state, float* logits, const ChannelMixObserver& observer) {
  check_call(&token, 1, state);
  eval_block(&token, 1, state, logits, observer ? &observer : nullptr, nullptr, 0);
}

void Engine::eval_sequence(const int32_t* tokens, size_t n, State& state, float* last_logits,
                           const ChannelMixObserver& observer, const HiddenObserver& hidden) {
  if (n == 0) {
    if (last_logits) throw UsageError("eval_sequence: no tokens, so there are no logits to return");
    return;
  }
  // Everything is checked before the state is touched.
  check_call(tokens, n, state);
  const auto total = static_cast<int64_t>(n);
  for (int64_t start = 0; start < total; start += options_.max_block) {
    const int64_t len = std::min(options_.max_block, total - start);
    const bool last = start + len == total;
    eval_block(tokens + start, len, state, last ? last_logits : nullptr, observer ? &observer : nullptr,
               hidden ? &hidden : nullptr, start);
  }
}

void Engine::eval_block(const int32_t* tokens, int64_t n, State& state, float* logits,
                        const ChannelMixObserver* observer, const HiddenObserver* hidden,
                        int64_t first_position) {
  const ModelDims& d = weights_.dims;
  const int64_t D = d.n_embd;
  const auto nd = static_cast<size_t>(n * D);
  Scratch::Frame frame(scratch_);

  // The residual stream, one row per token.
  float* x = scratch_.take(nd);
  for (int64_t t = 0; t < n; ++t) weights_.embedding->lookup(tokens[t], x + t * D);
  if (!weights_.embedding->includes_ln0()) {
    kernels::layer_norm_rows(x, n, D, weights_.ln0.weight.data(), weights_.ln0.bias.data(), kernels::kLayerNormEps, x);
  }

  float* normed = scratch_.take(nd);
  float* delta = scratch_.take(nd);
  float* v_first = weights_.arch == ArchVersion::V7 ? scratch_.take(nd) : nullptr;
  for (int64_t i = 0; i < d.n_layer; ++i) {
    const LayerWeights& L = weights_.layers[static_cast<size_t>(i)];
    LayerState& s = state.layers[static_cast<size_t>(i)];
    LayerContext ctx{*pool_, scratch_, d, weights_.ln_x_eps, i, v_first};

    kernels::layer_norm_rows(x, n, D, L.ln1.weight.data(), L.ln1.bias.data(), kernels::kLayerNormEps, normed);
    std::visit(
        [&](const auto& att) {
          using T = std::decay_t<decltype(att)>;
          if constexpr (std::is_same_v<T, TimeMixV4>) {
            time_mix_v4(att, normed, n, s, delta, ctx);
          } else if constexpr (std::is_same_v<T, TimeMixV5>) {
            time_mix_v5(att, normed, n, s, delta, ctx);
          } else if constexpr (std::is_same_v<T, TimeMixV6>) {
            time_mix_v6(att, normed, n, s, delta, ctx);
          } else {
            time_mix_v7(att, normed, n, s, delta, ctx);
          }
        },
        L.att);
    kernels::add_in_place(x, delta, static_cast<int64_t>(nd));

    kernels::layer_norm_rows(x, n, D, L.ln2.weight.data(), L.ln2.bias.data(), kernels::kLayerNormEps, normed);
    channel_mix(weights_.arch, L.ffn, normed, n, s, delta, ctx, observer, first_position);
    kernels::add_in_place(x, delta, static_cast<int64_t>(nd));
  }

  if (hidden) {
    kernels::layer_norm_rows(x, n, D, weights_.ln_out.weight.data(), weights_.ln_out.bias.data(), kernels::kLayerNormEps,
                             normed);
    (*hidden)(HiddenStates{first_position, n, D, normed});
  }
  if (logits) {
    const float* last = x + (n - 1) * D;
    kernels::layer_norm_rows(last, 1, D, weights_.ln_out.weight.data(), weights_.ln_out.bias.data(), kernels::kLayerNormEps,
                             normed);
    weights_.head->apply(normed, logits, *pool_);
  }
}

}  // namespace rwkvlite
