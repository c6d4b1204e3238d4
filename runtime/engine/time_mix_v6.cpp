// RWKV-6 time mix: data-dependent token shift (five mixes from one tanh LoRA), data-dependent
// decay exp(-exp(base + LoRA)), the RWKV-5 wkv with a per-token decay, group norm, SiLU gate.
#include <cmath>
#include <cstring>

#include "runtime/engine/kernels.h"
#include "runtime/engine/layer_forward.h"
#include "runtime/engine/wkv.h"

namespace rwkvlite {

void time_mix_v6(const TimeMixV6& w, const float* x, int64_t n, LayerState& s, float* out, LayerContext& ctx) {
  const int64_t D = ctx.dims.n_embd, H = ctx.dims.n_head, S = ctx.dims.head_size;
  const int64_t Lm = w.maa_up[0]->cols(), Ld = w.decay_down->rows();
  const auto nd = static_cast<size_t>(n * D);
  Scratch::Frame frame(ctx.scratch);

  // sx = x_prev - x, the direction every mix moves in.
  float* sx = ctx.scratch.take(nd);
  kernels::token_shift(x, n, D, s.att_x_prev.data(), sx);
  for (size_t i = 0; i < nd; ++i) sx[i] -= x[i];

  // One LoRA on a base mix yields the five per-token mix offsets (w, k, v, r, g).
  float* xxx = ctx.scratch.take(nd);
  mix_shift(x, sx, w.maa_x.data(), n, D, xxx);
  float* lora_hidden = ctx.scratch.take(static_cast<size_t>(n * 5 * Lm));
  w.maa_down->apply_batch(xxx, n, lora_hidden, ctx.pool);
  for (int64_t i = 0; i < n * 5 * Lm; ++i) lora_hidden[i] = std::tanh(lora_hidden[i]);

  float* lane = ctx.scratch.take(static_cast<size_t>(n * Lm));
  float* offset = ctx.scratch.take(nd);
  float* mixed[5];
  const std::vector<float>* base[5] = {&w.maa_w, &w.maa_k, &w.maa_v, &w.maa_r, &w.maa_g};
  for (int m = 0; m < 5; ++m) {
    // Gather lane m of every token into contiguous rows for the batched up-projection.
    for (int64_t t = 0; t < n; ++t) {
      std::memcpy(lane + t * Lm, lora_hidden + (t * 5 + m) * Lm, sizeof(float) * static_cast<size_t>(Lm));
    }
    w.maa_up[m]->apply_batch(lane, n, offset, ctx.pool);
    // x + sx * (maa + offset), summed in rwkv.cpp's order (offset + maa first).
    mixed[m] = ctx.scratch.take(nd);
    const float* b = base[m]->data();
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t c = 0; c < D; ++c) {
        const int64_t i = t * D + c;
        mixed[m][i] = (offset[i] + b[c]) * sx[i] + x[i];
      }
    }
  }
  const float *xw = mixed[0], *xk = mixed[1], *xv = mixed[2], *xr = mixed[3], *xg = mixed[4];

  float* r = ctx.scratch.take(nd);
  float* k = ctx.scratch.take(nd);
  float* v = ctx.scratch.take(nd);
  float* g = ctx.scratch.take(nd);
  w.receptance->apply_batch(xr, n, r, ctx.pool);
  w.key->apply_batch(xk, n, k, ctx.pool);
  w.value->apply_batch(xv, n, v, ctx.pool);
  w.gate->apply_batch(xg, n, g, ctx.pool);
  for (size_t i = 0; i < nd; ++i) g[i] = kernels::silu(g[i]);

  // Per-token decay factor exp(-exp(base + up(tanh(down(xw))))).
  float* decay_hidden = ctx.scratch.take(static_cast<size_t>(n * Ld));
  w.decay_down->apply_batch(xw, n, decay_hidden, ctx.pool);
  for (int64_t i = 0; i < n * Ld; ++i) decay_hidden[i] = std::tanh(decay_hidden[i]);
  float* decay = offset;  // reuse: the mix offsets are consumed
  w.decay_up->apply_batch(decay_hidden, n, decay, ctx.pool);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < D; ++c) {
      const int64_t i = t * D + c;
      decay[i] = std::exp(-std::exp(decay[i] + w.decay_base[c]));
    }
  }

  float* y = xxx;  // reuse
  wkv::v5(r, k, v, decay, /*decay_per_token=*/true, w.bonus.data(), n, H, S, s.att_wkv.data(), y, ctx.pool);
  for (int64_t t = 0; t < n; ++t) {
    kernels::group_norm(y + t * D, H, S, w.ln_x.weight.data(), w.ln_x.bias.data(), ctx.ln_x_eps);
  }
  for (size_t i = 0; i < nd; ++i) y[i] *= g[i];
  w.output->apply_batch(y, n, out, ctx.pool);
}

}  // namespace rwkvlite
