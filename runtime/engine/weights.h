// Everything the engine evaluates, in the engine's own parameterisation.
//
// Matrices are held through the Projection / ChannelMix / Embedding / Head interfaces, so a
// builder for compressed weights fills the same structures with other implementations. Small
// per-channel tensors are plain FP32 vectors, already transformed to the form the math uses
// (decays as -exp(w) or exp(-exp(w)), bonuses as exp(u), ...): see build_weights.cpp for the
// translation from the canonical BlinkDL parameters.
//
// Conventions: D = n_embd, H heads of size S (H * S = D), F = channel-mix width. Vectors of
// length D unless stated. LoRA factors are Projections too: "down" maps D to the LoRA width,
// "up" maps it back to D.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "runtime/core/model.h"
#include "runtime/engine/channel_mix.h"
#include "runtime/engine/embedding.h"
#include "runtime/engine/head.h"
#include "runtime/engine/projection.h"

namespace rwkvlite {

struct LayerNormWeights {
  std::vector<float> weight, bias;
};

// RWKV-4 time mix.
struct TimeMixV4 {
  std::vector<float> mix_k, mix_v, mix_r;  // x * mix + x_prev * (1 - mix)
  std::vector<float> neg_exp_decay;        // -exp(time_decay): log of the per-step decay
  std::vector<float> first;                // time_first (u), the current token's log bonus
  std::unique_ptr<Projection> receptance, key, value, output;  // D x D each
};

// RWKV-5.1 and 5.2 time mix (5.1 has no gate; its per-head decay and bonus are broadcast to
// every channel of the head here so both minors share one kernel).
struct TimeMixV5 {
  std::vector<float> mix_k, mix_v, mix_r, mix_g;  // mix_g empty for 5.1
  std::vector<float> decay;                       // exp(-exp(time_decay)), per channel (H*S)
  std::vector<float> bonus;                       // 5.1: exp(time_first); 5.2: time_faaaa
  LayerNormWeights ln_x;                          // group norm, H groups
  std::unique_ptr<Projection> receptance, key, value, output;
  std::unique_ptr<Projection> gate;               // null for 5.1
};

// RWKV-6 time mix: data-dependent token shift and decay through LoRAs.
struct TimeMixV6 {
  std::vector<float> maa_x;                          // mix for the LoRA input
  std::vector<float> maa_w, maa_k, maa_v, maa_r, maa_g;
  std::unique_ptr<Projection> maa_down;              // 5L x D (time_maa_w1 transposed)
  std::unique_ptr<Projection> maa_up[5];             // D x L each, in the order w, k, v, r, g
  std::vector<float> decay_base;                     // time_decay, raw: w = base + LoRA
  std::unique_ptr<Projection> decay_down, decay_up;  // Ld x D, D x Ld
  std::vector<float> bonus;                          // time_faaaa (H*S)
  LayerNormWeights ln_x;
  std::unique_ptr<Projection> receptance, key, value, gate, output;
};

// RWKV-7 time mix.
struct TimeMixV7 {
  std::vector<float> x_r, x_w, x_k, x_v, x_a, x_g;  // token-shift mixes
  std::vector<float> w0, a0, v0;                    // LoRA biases (v0 empty at layer 0)
  std::unique_ptr<Projection> w_down, w_up;         // decay LoRA
  std::unique_ptr<Projection> a_down, a_up;         // in-context learning rate LoRA
  std::unique_ptr<Projection> v_down, v_up;         // value-residual LoRA (null at layer 0)
  std::unique_ptr<Projection> g_down, g_up;         // gate LoRA
  std::vector<float> k_k, k_a;                      // key normalisation and replacement scales
  std::vector<float> r_k;                           // per-channel bonus weights (H*S)
  LayerNormWeights ln_x;
  std::unique_ptr<Projection> receptance, key, value, output;
};

// Channel mix of every version: token-shift mixes, an optional receptance gate, and the
// key/value core.
struct ChannelMixWeights {
  std::vector<float> mix_k;               // v4/v5: time_mix_k; v6: time_maa_k; v7: x_k
  std::vector<float> mix_r;               // v4/v5: time_mix_r; v6: time_maa_r; v7: empty
  std::unique_ptr<Projection> receptance;  // D x D; null for v7
  std::unique_ptr<ChannelMix> core;
};

struct LayerWeights {
  LayerNormWeights ln1, ln2;
  std::variant<TimeMixV4, TimeMixV5, TimeMixV6, TimeMixV7> att;
  ChannelMixWeights ffn;
};

struct EngineWeights {
  ArchVersion arch = ArchVersion::V4;
  ModelDims dims;
  float ln_x_eps = 64e-5f;  // group-norm epsilon (Model::ln_x_eps)
  std::unique_ptr<Embedding> embedding;
  LayerNormWeights ln0, ln_out;
  std::vector<LayerWeights> layers;
  std::unique_ptr<Head> head;
};

// Checks that every part is present and every size agrees with `dims` (throws UsageError
// naming the first problem), so the evaluation code can trust the shapes.
void validate_weights(const EngineWeights& w);

// Calls fn(name, slot) for every matrix slot that holds a projection: each layer's time-mix and
// channel-mix matrices and LoRA factors (including those inside a ProjectedChannelMix) and the
// head's (when it is a ProjectionHead). `name` is the canonical tensor the slot was built from
// ("blocks.3.att.key.weight", "blocks.3.att.w1", ...; v6's per-mix slices of time_maa_w2 are
// "blocks.i.att.time_maa_w2[m]"). Slots hold W in y = W x orientation, which for BlinkDL's
// LoRA factors (used as x @ A) is the canonical tensor transposed. Replacing a slot's content
// with a projection of the same shape is the intended way to swap in compressed matrices.
using ProjectionSlotFn = std::function<void(const std::string& name, std::unique_ptr<Projection>& slot)>;
void for_each_projection(EngineWeights& w, const ProjectionSlotFn& fn);

// Total bytes of weight storage (projections, embedding, head and vectors).
int64_t weights_storage_bytes(const EngineWeights& w);

}  // namespace rwkvlite
