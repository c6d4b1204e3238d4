// RWKV-7 time mix: six token-shift mixes; decay, in-context learning rate, value residual and
// gate from LoRAs; the generalised delta-rule wkv; group norm; the r·k bonus; output.
#include <cmath>
#include <cstring>

#include "runtime/engine/kernels.h"
#include "runtime/engine/layer_forward.h"
#include "runtime/engine/wkv.h"

namespace rwkvlite {
namespace {

// y = up(act(down(x))) (+ bias), the shape of every v7 LoRA.
template <typename Act>
void lora(const Projection& down, const Projection& up, const float* x, int64_t n, Act act, float* y,
          LayerContext& ctx) {
  Scratch::Frame frame(ctx.scratch);
  const int64_t L = down.rows();
  float* h = ctx.scratch.take(static_cast<size_t>(n * L));
  down.apply_batch(x, n, h, ctx.pool);
  for (int64_t i = 0; i < n * L; ++i) h[i] = act(h[i]);
  up.apply_batch(h, n, y, ctx.pool);
}

// The decay's slope: w = exp(-e^{-1/2} * sigmoid(z)) keeps each step's decay factor in
// (exp(-0.6065), 1). BlinkDL's reference and rwkv.cpp both write e^{-1/2} as 0.606531.
constexpr float kDecayScale = 0.606531f;

// Smallest norm the key normaliser divides by, as torch's F.normalize (and rwkv.cpp) use:
// an all-zero key stays zero instead of becoming NaN.
constexpr double kL2NormFloor = 1e-12;

}  // namespace

void time_mix_v7(const TimeMixV7& w, const float* x, int64_t n, LayerState& s, float* out, LayerContext& ctx) {
  const int64_t D = ctx.dims.n_embd, H = ctx.dims.n_head, S = ctx.dims.head_size;
  const auto nd = static_cast<size_t>(n * D);
  Scratch::Frame frame(ctx.scratch);

  float* sx = ctx.scratch.take(nd);
  kernels::token_shift(x, n, D, s.att_x_prev.data(), sx);
  for (size_t i = 0; i < nd; ++i) sx[i] -= x[i];
  float* xr = ctx.scratch.take(nd);
  float* xw = ctx.scratch.take(nd);
  float* xk = ctx.scratch.take(nd);
  float* xv = ctx.scratch.take(nd);
  float* xa = ctx.scratch.take(nd);
  float* xg = ctx.scratch.take(nd);
  mix_shift(x, sx, w.x_r.data(), n, D, xr);
  mix_shift(x, sx, w.x_w.data(), n, D, xw);
  mix_shift(x, sx, w.x_k.data(), n, D, xk);
  mix_shift(x, sx, w.x_v.data(), n, D, xv);
  mix_shift(x, sx, w.x_a.data(), n, D, xa);
  mix_shift(x, sx, w.x_g.data(), n, D, xg);

  float* r = ctx.scratch.take(nd);
  float* k = ctx.scratch.take(nd);
  float* v = ctx.scratch.take(nd);
  w.receptance->apply_batch(xr, n, r, ctx.pool);
  w.key->apply_batch(xk, n, k, ctx.pool);
  w.value->apply_batch(xv, n, v, ctx.pool);

  float* decay = ctx.scratch.take(nd);
  lora(*w.w_down, *w.w_up, xw, n, [](float z) { return std::tanh(z); }, decay, ctx);
  float* iclr = ctx.scratch.take(nd);  // in-context learning rate a, per channel in (0, 1)
  lora(*w.a_down, *w.a_up, xa, n, [](float z) { return z; }, iclr, ctx);
  float* g = ctx.scratch.take(nd);
  lora(*w.g_down, *w.g_up, xg, n, kernels::sigmoid, g, ctx);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < D; ++c) {
      const int64_t i = t * D + c;
      decay[i] = std::exp(-kDecayScale * kernels::sigmoid(decay[i] + w.w0[c]));
      iclr[i] = kernels::sigmoid(iclr[i] + w.a0[c]);
    }
  }

  // kk: the key direction, k * k_k normalised to unit length per head.
  float* kk = xr;  // reuse: the mixed inputs are consumed by now except xv
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      float* kh = kk + t * D + h * S;
      const float* k_in = k + t * D + h * S;
      const float* scale = w.k_k.data() + h * S;
      double sq = 0;
      for (int64_t j = 0; j < S; ++j) {
        kh[j] = k_in[j] * scale[j];
        sq += static_cast<double>(kh[j]) * kh[j];
      }
      const float inv = static_cast<float>(1.0 / std::max(std::sqrt(sq), kL2NormFloor));
      for (int64_t j = 0; j < S; ++j) kh[j] *= inv;
    }
  }
  // The key actually written is scaled towards k * a per channel by k_a:
  // k + (a * ka - ka) with ka = k * k_a, in rwkv.cpp's order.
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < D; ++c) {
      const int64_t i = t * D + c;
      const float ka = k[i] * w.k_a[c];
      k[i] = k[i] + (iclr[i] * ka - ka);
    }
  }

  // Value residual: layer 0's values are kept; later layers move towards them by a gate.
  if (ctx.layer == 0) {
    std::memcpy(ctx.v_first, v, sizeof(float) * nd);
  } else {
    float* mix = xw;  // reuse
    lora(*w.v_down, *w.v_up, xv, n, [](float z) { return z; }, mix, ctx);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t c = 0; c < D; ++c) {
        const int64_t i = t * D + c;
        v[i] = v[i] + (ctx.v_first[i] - v[i]) * kernels::sigmoid(mix[i] + w.v0[c]);
      }
    }
  }

  // Delta rule: remove along -kk, add back kk * a.
  float* remove = xk;  // reuse
  float* add = xa;     // reuse
  for (size_t i = 0; i < nd; ++i) {
    remove[i] = -kk[i];
    add[i] = kk[i] * iclr[i];
  }
  float* y = xg;  // reuse
  wkv::v7(r, decay, k, v, remove, add, n, H, S, s.att_wkv.data(), y, ctx.pool);

  for (int64_t t = 0; t < n; ++t) {
    float* yt = y + t * D;
    kernels::group_norm(yt, H, S, w.ln_x.weight.data(), w.ln_x.bias.data(), ctx.ln_x_eps);
    // Bonus for the current token, outside the state: v scaled per head by sum(r * k * r_k).
    for (int64_t h = 0; h < H; ++h) {
      const int64_t o = t * D + h * S;
      float dot = 0.0f;
      for (int64_t j = 0; j < S; ++j) dot += k[o + j] * r[o + j] * w.r_k[h * S + j];
      for (int64_t j = 0; j < S; ++j) yt[h * S + j] += v[o + j] * dot;
    }
  }
  for (size_t i = 0; i < nd; ++i) y[i] *= g[i];
  w.output->apply_batch(y, n, out, ctx.pool);
}

}  // namespace rwkvlite
