// Channel mix of every version around the ChannelMix core:
//   v4, v5: x_k, x_r by lerp;  out = sigmoid(R x_r) * core(x_k)
//   v6:     x_k, x_r by shift; out = sigmoid(R x_r) * core(x_k)
//   v7:     x_k by shift;      out = core(x_k)  (no receptance)
#include "runtime/engine/kernels.h"
#include "runtime/engine/layer_forward.h"

namespace rwkvlite {

void channel_mix(ArchVersion arch, const ChannelMixWeights& w, const float* x, int64_t n, LayerState& s, float* out,
                 LayerContext& ctx, const ChannelMixObserver* observer, int64_t first_position) {
  const int64_t D = ctx.dims.n_embd, F = w.core->width();
  const auto nd = static_cast<size_t>(n * D);
  const bool lerp = arch == ArchVersion::V4 || arch == ArchVersion::V5_1 || arch == ArchVersion::V5_2;
  Scratch::Frame frame(ctx.scratch);

  float* prev = ctx.scratch.take(nd);
  kernels::token_shift(x, n, D, s.ffn_x_prev.data(), prev);
  if (!lerp) {
    for (size_t i = 0; i < nd; ++i) prev[i] -= x[i];  // now sx = x_prev - x
  }
  auto mix = [&](const std::vector<float>& m, float* dst) {
    if (lerp) {
      mix_lerp(x, prev, m.data(), n, D, dst);
    } else {
      mix_shift(x, prev, m.data(), n, D, dst);
    }
  };

  float* xk = ctx.scratch.take(nd);
  mix(w.mix_k, xk);
  const bool observing = observer && *observer;
  float* preact = observing ? ctx.scratch.take(static_cast<size_t>(n * F)) : nullptr;
  float* kv = w.receptance ? ctx.scratch.take(nd) : out;
  w.core->apply(xk, n, kv, preact, ctx.scratch, ctx.pool);
  if (observing) {
    ChannelMixActivations a;
    a.layer = ctx.layer;
    a.first_position = first_position;
    a.n_tokens = n;
    a.n_embd = D;
    a.ffn_size = F;
    a.key_input = xk;
    a.key_preact = preact;
    (*observer)(a);
  }
  if (w.receptance) {
    float* xr = xk;  // reuse once the observer has seen x_k
    mix(w.mix_r, xr);
    w.receptance->apply_batch(xr, n, out, ctx.pool);
    for (size_t i = 0; i < nd; ++i) out[i] = kernels::sigmoid(out[i]) * kv[i];
  }
}

}  // namespace rwkvlite
