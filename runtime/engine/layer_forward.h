// The per-version math of one layer, evaluated for a block of n consecutive tokens at once:
// projections run as batched matrix products, the recurrences step through the tokens in
// order. Block size never changes results: row t is computed by the same operations in the
// same order whatever n is, so sequence mode reproduces token mode.
//
// Inputs x are the n x D layer-normed rows; outputs `out` are n x D rows to add to the
// residual stream.
#pragma once

#include <cstdint>

#include "runtime/core/model.h"
#include "runtime/engine/observer.h"
#include "runtime/engine/scratch.h"
#include "runtime/engine/state.h"
#include "runtime/engine/thread_pool.h"
#include "runtime/engine/weights.h"

namespace rwkvlite {

struct LayerContext {
  ThreadPool& pool;
  Scratch& scratch;
  const ModelDims& dims;
  float ln_x_eps;        // group-norm epsilon of the model
  int64_t layer;         // index of the layer being evaluated
  float* v_first;        // v7 only: n x D values of layer 0, written there, read by later layers
};

void time_mix_v4(const TimeMixV4& w, const float* x, int64_t n, LayerState& s, float* out, LayerContext& ctx);
void time_mix_v5(const TimeMixV5& w, const float* x, int64_t n, LayerState& s, float* out, LayerContext& ctx);
void time_mix_v6(const TimeMixV6& w, const float* x, int64_t n, LayerState& s, float* out, LayerContext& ctx);
void time_mix_v7(const TimeMixV7& w, const float* x, int64_t n, LayerState& s, float* out, LayerContext& ctx);

// Channel mix of every version (they differ only in the token-shift form and the receptance
// gate). Calls `observer` (when set) with the block's key inputs and pre-activations;
// `first_position` is passed through to it.
void channel_mix(ArchVersion arch, const ChannelMixWeights& w, const float* x, int64_t n, LayerState& s, float* out,
                 LayerContext& ctx, const ChannelMixObserver* observer, int64_t first_position);

// Token-shift mixes, in the two algebraically equal forms the references use. Keeping each
// version's form keeps its rounding identical to rwkv.cpp's.
//   lerp  (v4, v5): x * m + (x_prev - x_prev * m)
//   shift (v6, v7): (x_prev - x) * m + x, with sx = x_prev - x computed once
void mix_lerp(const float* x, const float* x_prev, const float* m, int64_t n, int64_t d, float* out);
void mix_shift(const float* x, const float* sx, const float* m, int64_t n, int64_t d, float* out);

}  // namespace rwkvlite
