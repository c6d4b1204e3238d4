#include "runtime/engine/weights.h"

#include <string>
#include <type_traits>

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

// Collects the first problem found while walking the weights; sizes are checked against dims.
class Checker {
 public:
  explicit Checker(const EngineWeights& w) : d_(w.dims) {}

  void vec(const std::vector<float>& v, int64_t n, const std::string& what) {
    if (static_cast<int64_t>(v.size()) != n) {
      fail(what + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(n));
    }
  }
  void norm(const LayerNormWeights& n, const std::string& what) {
    vec(n.weight, d_.n_embd, what + " weight");
    vec(n.bias, d_.n_embd, what + " bias");
  }
  void proj(const std::unique_ptr<Projection>& p, int64_t rows, int64_t cols, const std::string& what) {
    if (!p) fail(what + " is missing");
    if (p->rows() != rows || p->cols() != cols) {
      fail(what + " is " + std::to_string(p->rows()) + " x " + std::to_string(p->cols()) + ", expected " +
           std::to_string(rows) + " x " + std::to_string(cols));
    }
  }
  [[noreturn]] void fail(const std::string& msg) { throw UsageError("engine weights: " + msg); }

  const ModelDims& d_;
};

template <typename T>
constexpr bool is_one_of_arch(ArchVersion a) {
  if constexpr (std::is_same_v<T, TimeMixV4>) return a == ArchVersion::V4;
  if constexpr (std::is_same_v<T, TimeMixV5>) return a == ArchVersion::V5_1 || a == ArchVersion::V5_2;
  if constexpr (std::is_same_v<T, TimeMixV6>) return a == ArchVersion::V6;
  if constexpr (std::is_same_v<T, TimeMixV7>) return a == ArchVersion::V7;
  return false;
}

void check_att(Checker& c, ArchVersion arch, int64_t layer, const TimeMixV4& a, const std::string& p) {
  const int64_t D = c.d_.n_embd;
  for (auto* v : {&a.mix_k, &a.mix_v, &a.mix_r, &a.neg_exp_decay, &a.first}) c.vec(*v, D, p + "vector");
  for (auto* q : {&a.receptance, &a.key, &a.value, &a.output}) c.proj(*q, D, D, p + "projection");
}

void check_att(Checker& c, ArchVersion arch, int64_t layer, const TimeMixV5& a, const std::string& p) {
  const int64_t D = c.d_.n_embd;
  for (auto* v : {&a.mix_k, &a.mix_v, &a.mix_r, &a.decay, &a.bonus}) c.vec(*v, D, p + "vector");
  c.norm(a.ln_x, p + "ln_x");
  for (auto* q : {&a.receptance, &a.key, &a.value, &a.output}) c.proj(*q, D, D, p + "projection");
  if (arch == ArchVersion::V5_2) {
    c.vec(a.mix_g, D, p + "mix_g");
    c.proj(a.gate, D, D, p + "gate");
  } else if (a.gate) {
    c.fail(p + "v5.1 has no gate");
  }
}

void check_att(Checker& c, ArchVersion arch, int64_t layer, const TimeMixV6& a, const std::string& p) {
  const int64_t D = c.d_.n_embd, Lm = c.d_.lora_maa, Ld = c.d_.lora_decay;
  for (auto* v : {&a.maa_x, &a.maa_w, &a.maa_k, &a.maa_v, &a.maa_r, &a.maa_g, &a.decay_base, &a.bonus}) {
    c.vec(*v, D, p + "vector");
  }
  c.proj(a.maa_down, 5 * Lm, D, p + "maa_down");
  for (const auto& up : a.maa_up) c.proj(up, D, Lm, p + "maa_up");
  c.proj(a.decay_down, Ld, D, p + "decay_down");
  c.proj(a.decay_up, D, Ld, p + "decay_up");
  c.norm(a.ln_x, p + "ln_x");
  for (auto* q : {&a.receptance, &a.key, &a.value, &a.gate, &a.output}) c.proj(*q, D, D, p + "projection");
}

void check_att(Checker& c, ArchVersion arch, int64_t layer, const TimeMixV7& a, const std::string& p) {
  const int64_t D = c.d_.n_embd;
  for (auto* v : {&a.x_r, &a.x_w, &a.x_k, &a.x_v, &a.x_a, &a.x_g, &a.w0, &a.a0, &a.k_k, &a.k_a, &a.r_k}) {
    c.vec(*v, D, p + "vector");
  }
  c.proj(a.w_down, c.d_.lora_w, D, p + "w_down");
  c.proj(a.w_up, D, c.d_.lora_w, p + "w_up");
  c.proj(a.a_down, c.d_.lora_a, D, p + "a_down");
  c.proj(a.a_up, D, c.d_.lora_a, p + "a_up");
  c.proj(a.g_down, c.d_.lora_g, D, p + "g_down");
  c.proj(a.g_up, D, c.d_.lora_g, p + "g_up");
  if (layer > 0) {
    c.vec(a.v0, D, p + "v0");
    c.proj(a.v_down, c.d_.lora_v, D, p + "v_down");
    c.proj(a.v_up, D, c.d_.lora_v, p + "v_up");
  }
  c.norm(a.ln_x, p + "ln_x");
  for (auto* q : {&a.receptance, &a.key, &a.value, &a.output}) c.proj(*q, D, D, p + "projection");
}

}  // namespace

void validate_weights(const EngineWeights& w) {
  Checker c(w);
  const ModelDims& d = w.dims;
  if (d.n_layer <= 0 || d.n_embd <= 0 || d.n_vocab <= 0 || d.ffn_size <= 0) c.fail("a dimension is zero");
  if (w.arch != ArchVersion::V4 && (d.n_head <= 0 || d.n_head * d.head_size != d.n_embd)) {
    c.fail("heads do not divide the width");
  }
  if (!w.embedding || w.embedding->vocab_size() != d.n_vocab || w.embedding->n_embd() != d.n_embd) {
    c.fail("embedding is missing or has the wrong size");
  }
  if (!w.head || w.head->vocab_size() != d.n_vocab || w.head->n_embd() != d.n_embd) {
    c.fail("head is missing or has the wrong size");
  }
  c.norm(w.ln0, "ln0");
  c.norm(w.ln_out, "ln_out");
  if (static_cast<int64_t>(w.layers.size()) != d.n_layer) c.fail("layer count differs from dims");
  for (int64_t i = 0; i < d.n_layer; ++i) {
    const LayerWeights& L = w.layers[static_cast<size_t>(i)];
    const std::string p = "layer " + std::to_string(i) + " ";
    c.norm(L.ln1, p + "ln1");
    c.norm(L.ln2, p + "ln2");
    std::visit(
        [&](const auto& a) {
          if (!is_one_of_arch<std::decay_t<decltype(a)>>(w.arch)) c.fail(p + "time mix is for another version");
          check_att(c, w.arch, i, a, p + "time mix ");
        },
        L.att);
    c.vec(L.ffn.mix_k, d.n_embd, p + "channel mix mix_k");
    if (w.arch == ArchVersion::V7) {
      if (L.ffn.receptance) c.fail(p + "v7 channel mix has no receptance");
    } else {
      c.vec(L.ffn.mix_r, d.n_embd, p + "channel mix mix_r");
      c.proj(L.ffn.receptance, d.n_embd, d.n_embd, p + "channel mix receptance");
    }
    if (!L.ffn.core || L.ffn.core->n_embd() != d.n_embd || L.ffn.core->width() != d.ffn_size) {
      c.fail(p + "channel mix core is missing or has the wrong size");
    }
  }
}

int64_t weights_storage_bytes(const EngineWeights& w) {
  int64_t bytes = 0;
  auto vec = [&](const std::vector<float>& v) { bytes += static_cast<int64_t>(v.size() * sizeof(float)); };
  auto proj = [&](const std::unique_ptr<Projection>& p) { bytes += p ? p->storage_bytes() : 0; };
  auto norm = [&](const LayerNormWeights& n) {
    vec(n.weight);
    vec(n.bias);
  };
  if (w.embedding) bytes += w.embedding->storage_bytes();
  if (w.head) bytes += w.head->storage_bytes();
  norm(w.ln0);
  norm(w.ln_out);
  for (const LayerWeights& L : w.layers) {
    norm(L.ln1);
    norm(L.ln2);
    std::visit(
        [&](const auto& a) {
          using T = std::decay_t<decltype(a)>;
          if constexpr (std::is_same_v<T, TimeMixV4>) {
            for (auto* v : {&a.mix_k, &a.mix_v, &a.mix_r, &a.neg_exp_decay, &a.first}) vec(*v);
            for (auto* q : {&a.receptance, &a.key, &a.value, &a.output}) proj(*q);
          } else if constexpr (std::is_same_v<T, TimeMixV5>) {
            for (auto* v : {&a.mix_k, &a.mix_v, &a.mix_r, &a.mix_g, &a.decay, &a.bonus}) vec(*v);
            norm(a.ln_x);
            for (auto* q : {&a.receptance, &a.key, &a.value, &a.output, &a.gate}) proj(*q);
          } else if constexpr (std::is_same_v<T, TimeMixV6>) {
            for (auto* v : {&a.maa_x, &a.maa_w, &a.maa_k, &a.maa_v, &a.maa_r, &a.maa_g, &a.decay_base, &a.bonus}) vec(*v);
            norm(a.ln_x);
            proj(a.maa_down);
            for (const auto& up : a.maa_up) proj(up);
            for (auto* q : {&a.decay_down, &a.decay_up, &a.receptance, &a.key, &a.value, &a.gate, &a.output}) proj(*q);
          } else {
            for (auto* v : {&a.x_r, &a.x_w, &a.x_k, &a.x_v, &a.x_a, &a.x_g, &a.w0, &a.a0, &a.v0, &a.k_k, &a.k_a, &a.r_k}) {
              vec(*v);
            }
            norm(a.ln_x);
            for (auto* q : {&a.w_down, &a.w_up, &a.a_down, &a.a_up, &a.v_down, &a.v_up, &a.g_down, &a.g_up,
                            &a.receptance, &a.key, &a.value, &a.output}) {
              proj(*q);
            }
          }
        },
        L.att);
    vec(L.ffn.mix_k);
    vec(L.ffn.mix_r);
    proj(L.ffn.receptance);
    if (L.ffn.core) bytes += L.ffn.core->storage_bytes();
  }
  return bytes;
}

void for_each_projection(EngineWeights& w, const ProjectionSlotFn& fn) {
  auto visit_slot = [&](const std::string& name, std::unique_ptr<Projection>& slot) {
    if (slot) fn(name, slot);
  };
  for (size_t i = 0; i < w.layers.size(); ++i) {
    LayerWeights& L = w.layers[i];
    const std::string att = "blocks." + std::to_string(i) + ".att.";
    const std::string ffn = "blocks." + std::to_string(i) + ".ffn.";
    std::visit(
        [&](auto& a) {
          using T = std::decay_t<decltype(a)>;
          visit_slot(att + "receptance.weight", a.receptance);
          visit_slot(att + "key.weight", a.key);
          visit_slot(att + "value.weight", a.value);
          visit_slot(att + "output.weight", a.output);
          if constexpr (std::is_same_v<T, TimeMixV5>) {
            visit_slot(att + "gate.weight", a.gate);
          } else if constexpr (std::is_same_v<T, TimeMixV6>) {
            visit_slot(att + "gate.weight", a.gate);
            visit_slot(att + "time_maa_w1", a.maa_down);
            for (int m = 0; m < 5; ++m) visit_slot(att + "time_maa_w2[" + std::to_string(m) + "]", a.maa_up[m]);
            visit_slot(att + "time_decay_w1", a.decay_down);
            visit_slot(att + "time_decay_w2", a.decay_up);
          } else if constexpr (std::is_same_v<T, TimeMixV7>) {
            visit_slot(att + "w1", a.w_down);
            visit_slot(att + "w2", a.w_up);
            visit_slot(att + "a1", a.a_down);
            visit_slot(att + "a2", a.a_up);
            visit_slot(att + "v1", a.v_down);
            visit_slot(att + "v2", a.v_up);
            visit_slot(att + "g1", a.g_down);
            visit_slot(att + "g2", a.g_up);
          }
        },
        L.att);
    visit_slot(ffn + "receptance.weight", L.ffn.receptance);
    if (auto* core = dynamic_cast<ProjectedChannelMix*>(L.ffn.core.get())) {
      visit_slot(ffn + "key.weight", core->key_slot());
      visit_slot(ffn + "value.weight", core->value_slot());
    }
  }
  if (auto* head = dynamic_cast<ProjectionHead*>(w.head.get())) visit_slot("head.weight", head->weight_slot());
}

}  // namespace rwkvlite
