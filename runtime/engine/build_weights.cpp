// The one place where BlinkDL's canonical parameters become the engine's: which tensors are
// transposed, which are exponentiated, and why. Precomputing here means the per-token math
// never evaluates exp() of a constant.
#include "runtime/engine/build_weights.h"

#include <cmath>
#include <string>

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

class Builder {
 public:
  // `consumable` is the same model when its tensors may be moved out instead of copied.
  Builder(const Model& m, Model* consumable, WeightProviders providers = {})
      : m_(m), consumable_(consumable), d_(m.dims), providers_(std::move(providers)) {}

  EngineWeights build() {
    EngineWeights w;
    w.arch = m_.arch;
    w.dims = d_;
    w.ln_x_eps = m_.ln_x_eps;
    if (providers_.embedding) {
      w.embedding = providers_.embedding();
    } else {
      w.embedding = std::make_unique<DenseEmbedding>(d_.n_vocab, d_.n_embd, take("emb.weight", {d_.n_vocab, d_.n_embd}));
    }
    w.ln0 = norm("blocks.0.ln0");
    for (int64_t i = 0; i < d_.n_layer; ++i) w.layers.push_back(layer(i));
    w.ln_out = norm("ln_out");
    if (providers_.head) {
      w.head = providers_.head();
    } else {
      w.head = std::make_unique<ProjectionHead>(matrix("head.weight", d_.n_vocab, d_.n_embd));
    }
    validate_weights(w);
    return w;
  }

 private:
  const Model& m_;
  Model* consumable_;
  const ModelDims& d_;
  WeightProviders providers_;

  // A tensor's values, moved out of the model when it is being consumed (each tensor is used
  // exactly once), else copied.
  std::vector<float> take(const std::string& name, std::vector<int64_t> shape) const {
    const Tensor& t = sized(name, std::move(shape));
    if (consumable_) return std::move(consumable_->at(name).data);
    return t.data;
  }

  const Tensor& sized(const std::string& name, std::vector<int64_t> shape) const {
    const Tensor& t = m_.at(name);
    if (t.numel() != Tensor::numel_of(shape)) {
      throw InputError("tensor '" + name + "' has shape " + shape_to_string(t.shape) + ", expected " +
                       shape_to_string(shape));
    }
    return t;
  }
  // A per-channel vector of n values, whatever singleton dimensions the canonical shape has
  // (time-mix vectors are (1, 1, D) in BlinkDL's checkpoints).
  std::vector<float> vec(const std::string& name, int64_t n) const { return take(name, {n}); }
  std::vector<float> vecD(const std::string& name) const { return vec(name, d_.n_embd); }

  LayerNormWeights norm(const std::string& prefix) const {
    return {vecD(prefix + ".weight"), vecD(prefix + ".bias")};
  }
  // A (rows x cols) PyTorch Linear weight, already in y = W x orientation.
  std::unique_ptr<Projection> matrix(const std::string& name, int64_t rows, int64_t cols) const {
    if (providers_.matrix) {
      if (auto p = providers_.matrix(name, rows, cols)) return p;
    }
    return std::make_unique<DenseProjection>(rows, cols, take(name, {rows, cols}));
  }
  // A LoRA factor that BlinkDL applies as x @ A, with A stored (cols x rows): y = A^T x. A
  // factor the model does not hold is the matrix provider's (a compact file stores encoded
  // factors already transposed).
  std::unique_ptr<Projection> lora(const std::string& name, int64_t rows, int64_t cols) const {
    if (!m_.has(name) && providers_.matrix) {
      if (auto p = providers_.matrix(name, rows, cols)) return p;
    }
    return DenseProjection::from_transposed(rows, cols, sized(name, {cols, rows}).data);
  }

  static std::string blk(int64_t i, const std::string& rest) { return "blocks." + std::to_string(i) + "." + rest; }

  // exp(-exp(w)) rounded once from double: the per-step decay factor in (0, 1).
  static float decay_factor(float w) { return static_cast<float>(std::exp(-std::exp(static_cast<double>(w)))); }

  // One layer: its norms, then the time mix of the architecture, then the channel mix.
  LayerWeights layer(int64_t i) const {
    LayerWeights L;
    L.ln1 = norm(blk(i, "ln1"));
    L.ln2 = norm(blk(i, "ln2"));
    switch (m_.arch) {
      case ArchVersion::V4: L.att = time_mix_v4(i); break;
      case ArchVersion::V5_1:
      case ArchVersion::V5_2: L.att = time_mix_v5(i); break;
      case ArchVersion::V6: L.att = time_mix_v6(i); break;
      case ArchVersion::V7: L.att = time_mix_v7(i); break;
    }
    L.ffn = channel_mix(i);
    return L;
  }

  std::string att(int64_t i, const std::string& rest) const { return blk(i, "att." + rest); }
  std::unique_ptr<Projection> att_matrix(int64_t i, const std::string& which) const {
    return matrix(att(i, which + ".weight"), d_.n_embd, d_.n_embd);
  }

  TimeMixV4 time_mix_v4(int64_t i) const {
    TimeMixV4 a;
    a.mix_k = vecD(att(i, "time_mix_k"));
    a.mix_v = vecD(att(i, "time_mix_v"));
    a.mix_r = vecD(att(i, "time_mix_r"));
    // The wkv recurrence works with logarithms of the running sums; the per-step decay
    // factor exp(-exp(w)) enters as its logarithm, -exp(w).
    a.neg_exp_decay = vecD(att(i, "time_decay"));
    for (float& v : a.neg_exp_decay) v = static_cast<float>(-std::exp(static_cast<double>(v)));
    a.first = vecD(att(i, "time_first"));
    a.receptance = att_matrix(i, "receptance");
    a.key = att_matrix(i, "key");
    a.value = att_matrix(i, "value");
    a.output = att_matrix(i, "output");
    return a;
  }

  // v5.1 and v5.2: they differ in how decay and bonus are stored and in v5.2's gate.
  TimeMixV5 time_mix_v5(int64_t i) const {
    const int64_t D = d_.n_embd, H = d_.n_head, S = d_.head_size;
    TimeMixV5 a;
    a.mix_k = vecD(att(i, "time_mix_k"));
    a.mix_v = vecD(att(i, "time_mix_v"));
    a.mix_r = vecD(att(i, "time_mix_r"));
    a.decay.resize(static_cast<size_t>(D));
    a.bonus.resize(static_cast<size_t>(D));
    if (m_.arch == ArchVersion::V5_1) {
      // One decay and one bonus per head; the bonus is stored as a logarithm u.
      const std::vector<float> w = vec(att(i, "time_decay"), H), u = vec(att(i, "time_first"), H);
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t s = 0; s < S; ++s) {
          a.decay[h * S + s] = decay_factor(w[h]);
          a.bonus[h * S + s] = static_cast<float>(std::exp(static_cast<double>(u[h])));
        }
      }
    } else {
      const std::vector<float> w = vecD(att(i, "time_decay"));
      for (int64_t c = 0; c < D; ++c) a.decay[c] = decay_factor(w[c]);
      a.bonus = vecD(att(i, "time_faaaa"));  // already the bonus itself
      a.mix_g = vecD(att(i, "time_mix_g"));
      a.gate = att_matrix(i, "gate");
    }
    a.ln_x = norm(att(i, "ln_x"));
    a.receptance = att_matrix(i, "receptance");
    a.key = att_matrix(i, "key");
    a.value = att_matrix(i, "value");
    a.output = att_matrix(i, "output");
    return a;
  }

  TimeMixV6 time_mix_v6(int64_t i) const {
    const int64_t D = d_.n_embd, Lm = d_.lora_maa, Ld = d_.lora_decay;
    TimeMixV6 a;
    a.maa_x = vecD(att(i, "time_maa_x"));
    a.maa_w = vecD(att(i, "time_maa_w"));
    a.maa_k = vecD(att(i, "time_maa_k"));
    a.maa_v = vecD(att(i, "time_maa_v"));
    a.maa_r = vecD(att(i, "time_maa_r"));
    a.maa_g = vecD(att(i, "time_maa_g"));
    a.maa_down = lora(att(i, "time_maa_w1"), 5 * Lm, D);
    // time_maa_w2 is (5, L, D): slice m maps LoRA lane m back to D channels as h_m @ w2[m].
    const Tensor& w2 = sized(att(i, "time_maa_w2"), {5, Lm, D});
    for (int64_t m = 0; m < 5; ++m) {
      const std::vector<float> slice(w2.data.begin() + m * Lm * D, w2.data.begin() + (m + 1) * Lm * D);
      a.maa_up[m] = DenseProjection::from_transposed(D, Lm, slice);
    }
    // Kept raw: the decay is data-dependent, exp(-exp(base + LoRA(x))), so nothing can be
    // precomputed beyond the base itself.
    a.decay_base = vecD(att(i, "time_decay"));
    a.decay_down = lora(att(i, "time_decay_w1"), Ld, D);
    a.decay_up = lora(att(i, "time_decay_w2"), D, Ld);
    a.bonus = vecD(att(i, "time_faaaa"));
    a.ln_x = norm(att(i, "ln_x"));
    a.receptance = att_matrix(i, "receptance");
    a.key = att_matrix(i, "key");
    a.value = att_matrix(i, "value");
    a.gate = att_matrix(i, "gate");
    a.output = att_matrix(i, "output");
    return a;
  }

  TimeMixV7 time_mix_v7(int64_t i) const {
    const int64_t D = d_.n_embd;
    TimeMixV7 a;
    a.x_r = vecD(att(i, "x_r"));
    a.x_w = vecD(att(i, "x_w"));
    a.x_k = vecD(att(i, "x_k"));
    a.x_v = vecD(att(i, "x_v"));
    a.x_a = vecD(att(i, "x_a"));
    a.x_g = vecD(att(i, "x_g"));
    a.w0 = vecD(att(i, "w0"));
    a.w_down = lora(att(i, "w1"), d_.lora_w, D);
    a.w_up = lora(att(i, "w2"), D, d_.lora_w);
    a.a0 = vecD(att(i, "a0"));
    a.a_down = lora(att(i, "a1"), d_.lora_a, D);
    a.a_up = lora(att(i, "a2"), D, d_.lora_a);
    // Layer 0 defines v_first rather than mixing towards it, so its value LoRA (when a
    // checkpoint carries one at all) is never used.
    if (i > 0) {
      a.v0 = vecD(att(i, "v0"));
      a.v_down = lora(att(i, "v1"), d_.lora_v, D);
      a.v_up = lora(att(i, "v2"), D, d_.lora_v);
    }
    a.g_down = lora(att(i, "g1"), d_.lora_g, D);
    a.g_up = lora(att(i, "g2"), D, d_.lora_g);
    a.k_k = vecD(att(i, "k_k"));
    a.k_a = vecD(att(i, "k_a"));
    a.r_k = vecD(att(i, "r_k"));
    a.ln_x = norm(att(i, "ln_x"));
    a.receptance = att_matrix(i, "receptance");
    a.key = att_matrix(i, "key");
    a.value = att_matrix(i, "value");
    a.output = att_matrix(i, "output");
    return a;
  }

  // The channel mix: its token-shift mixes (named per architecture), the receptance (none in
  // v7) and the key/value core, which a provider may supply (a sparse channel mix).
  ChannelMixWeights channel_mix(int64_t i) const {
    const int64_t D = d_.n_embd, F = d_.ffn_size;
    auto ffn = [&](const std::string& rest) { return blk(i, "ffn." + rest); };
    ChannelMixWeights c;
    if (m_.arch == ArchVersion::V7) {
      c.mix_k = vecD(ffn("x_k"));
    } else if (m_.arch == ArchVersion::V6) {
      c.mix_k = vecD(ffn("time_maa_k"));
      c.mix_r = vecD(ffn("time_maa_r"));
    } else {
      c.mix_k = vecD(ffn("time_mix_k"));
      c.mix_r = vecD(ffn("time_mix_r"));
    }
    if (m_.arch != ArchVersion::V7) c.receptance = matrix(ffn("receptance.weight"), D, D);
    if (providers_.channel_mix) c.core = providers_.channel_mix(i);
    if (!c.core) c.core = std::make_unique<ProjectedChannelMix>(matrix(ffn("key.weight"), F, D), matrix(ffn("value.weight"), D, F));
    return c;
  }
};

}  // namespace

namespace {

void check_buildable(const Model& model) {
  if (model.dims.n_layer <= 0 || model.dims.n_embd <= 0 || model.dims.n_vocab <= 0) {
    throw InputError("cannot build an engine from a model without layers, width or vocabulary");
  }
  if (model.arch != ArchVersion::V4 &&
      (model.dims.n_head <= 0 || model.dims.head_size * model.dims.n_head != model.dims.n_embd)) {
    throw InputError("model head count " + std::to_string(model.dims.n_head) + " and head size " +
                     std::to_string(model.dims.head_size) + " do not match its width " + std::to_string(model.dims.n_embd));
  }
}

}  // namespace

EngineWeights build_dense_weights(const Model& model) {
  check_buildable(model);
  return Builder(model, nullptr).build();
}

EngineWeights build_weights(const Model& small_tensors, WeightProviders providers) {
  check_buildable(small_tensors);
  return Builder(small_tensors, nullptr, std::move(providers)).build();
}

EngineWeights build_dense_weights(Model&& model) {
  check_buildable(model);
  return Builder(model, &model).build();
}

}  // namespace rwkvlite
