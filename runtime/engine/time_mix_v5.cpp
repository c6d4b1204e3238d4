// RWKV-5.1 / 5.2 time mix: token-shift lerps, multi-head matrix-valued wkv with per-channel
// decay and bonus, per-head group norm, SiLU gate (5.2 only), output projection.
#include "runtime/engine/kernels.h"
#include "runtime/engine/layer_forward.h"
#include "runtime/engine/wkv.h"

namespace rwkvlite {

void time_mix_v5(const TimeMixV5& w, const float* x, int64_t n, LayerState& s, float* out, LayerContext& ctx) {
  const int64_t D = ctx.dims.n_embd, H = ctx.dims.n_head, S = ctx.dims.head_size;
  const auto nd = static_cast<size_t>(n * D);
  const bool gated = w.gate != nullptr;
  Scratch::Frame frame(ctx.scratch);
  float* prev = ctx.scratch.take(nd);
  kernels::token_shift(x, n, D, s.att_x_prev.data(), prev);

  float* xk = ctx.scratch.take(nd);
  float* xv = ctx.scratch.take(nd);
  float* xr = ctx.scratch.take(nd);
  mix_lerp(x, prev, w.mix_k.data(), n, D, xk);
  mix_lerp(x, prev, w.mix_v.data(), n, D, xv);
  mix_lerp(x, prev, w.mix_r.data(), n, D, xr);

  float* r = ctx.scratch.take(nd);
  float* k = ctx.scratch.take(nd);
  float* v = ctx.scratch.take(nd);
  w.receptance->apply_batch(xr, n, r, ctx.pool);
  w.key->apply_batch(xk, n, k, ctx.pool);
  w.value->apply_batch(xv, n, v, ctx.pool);

  float* g = nullptr;
  if (gated) {
    float* xg = xr;  // reuse: xr is no longer needed
    mix_lerp(x, prev, w.mix_g.data(), n, D, xg);
    g = ctx.scratch.take(nd);
    w.gate->apply_batch(xg, n, g, ctx.pool);
    for (size_t i = 0; i < nd; ++i) g[i] = kernels::silu(g[i]);
  }

  float* y = xk;  // reuse
  wkv::v5(r, k, v, w.decay.data(), /*decay_per_token=*/false, w.bonus.data(), n, H, S, s.att_wkv.data(), y, ctx.pool);
  for (int64_t t = 0; t < n; ++t) {
    kernels::group_norm(y + t * D, H, S, w.ln_x.weight.data(), w.ln_x.bias.data(), ctx.ln_x_eps);
  }
  if (gated) {
    for (size_t i = 0; i < nd; ++i) y[i] *= g[i];
  }
  w.output->apply_batch(y, n, out, ctx.pool);
}

}  // namespace rwkvlite
