// RWKV-4 time mix: token-shift lerps, receptance-gated wkv (a decayed, exponentially weighted
// average of values), output projection.
#include "runtime/engine/kernels.h"
#include "runtime/engine/layer_forward.h"
#include "runtime/engine/wkv.h"

namespace rwkvlite {

void time_mix_v4(const TimeMixV4& w, const float* x, int64_t n, LayerState& s, float* out, LayerContext& ctx) {
  const int64_t D = ctx.dims.n_embd;
  const auto nd = static_cast<size_t>(n * D);
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
  for (size_t i = 0; i < nd; ++i) r[i] = kernels::sigmoid(r[i]);

  float* y = xk;  // reuse: xk is no longer needed
  wkv::v4(r, k, v, w.neg_exp_decay.data(), w.first.data(), n, D, s.att_aa.data(), s.att_bb.data(), s.att_pp.data(), y,
          ctx.pool);
  w.output->apply_batch(y, n, out, ctx.pool);
}

}  // namespace rwkvlite
