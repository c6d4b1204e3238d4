#include "converters/synthetic_model.h"

#include <cmath>
#include <string>

#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/core/seeded_random.h"

namespace rwkvlite {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// BlinkDL's v7 LoRA widths: max(32, round(factor * n^power / 32) * 32).
int64_t lora_width(int64_t d, double factor, double power) {
  const double w = std::round(factor * std::pow(static_cast<double>(d), power) / 32.0) * 32.0;
  return std::max<int64_t>(32, static_cast<int64_t>(w));
}

int64_t round_to_32(double v) { return std::max<int64_t>(32, static_cast<int64_t>(std::round(v / 32.0)) * 32); }

// Fills `t` (named `name`, of a layer at depth `ratio` in [0, 1]) with values at a trained
// model's scale. Every canonical tensor name of v5.2 and v7 has a rule here.
void fill(const std::string& name, Tensor& t, double ratio, SeededRandom& rng) {
  auto normal = [&](double stddev) {
    for (float& v : t.data) v = static_cast<float>(stddev * rng.next_normal());
  };
  auto uniform = [&](double lo, double hi) {
    for (float& v : t.data) v = static_cast<float>(rng.uniform(lo, hi));
  };
  auto around = [&](double centre, double stddev) {
    for (float& v : t.data) v = static_cast<float>(centre + stddev * rng.next_normal());
  };
  const double in = static_cast<double>(t.cols());
  if (name == "emb.weight") return normal(0.5);  // ln0 normalises it: only the direction matters
  if (name == "head.weight") return normal(1.0 / std::sqrt(in));
  if (ends_with(name, "ln_x.weight")) return around(1.0, 0.05);
  if (ends_with(name, ".weight") && (name.find(".ln") != std::string::npos || name.rfind("ln_out", 0) == 0)) {
    return around(1.0, 0.05);
  }
  if (ends_with(name, ".bias")) return normal(0.02);
  // Matrices [out, in]: unit-variance outputs for unit-variance inputs; the two projections
  // back into the residual stream at half that, so the stream grows slowly with depth.
  if (ends_with(name, "att.output.weight") || ends_with(name, "ffn.value.weight")) return normal(0.5 / std::sqrt(in));
  if (ends_with(name, ".weight")) return normal(1.0 / std::sqrt(in));
  // v5.2: decay factor exp(-exp(w)) between 0.9975 (w = -6) and 0.37 (w = 0); bonus u.
  if (ends_with(name, "att.time_decay")) return uniform(-6.0, 0.0);
  if (ends_with(name, "att.time_faaaa")) return uniform(0.0, 1.0);
  // Token-shift mixes: between the current token (1) and the previous one (0), leaning to
  // the current one deeper in the network as in trained models.
  if (name.find("time_mix_") != std::string::npos || ends_with(name, "ffn.x_k") ||
      (name.find("att.x_") != std::string::npos)) {
    return uniform(0.1 + 0.4 * ratio, 0.9);
  }
  // v7 (see runtime/engine/time_mix_v7.cpp for how each enters).
  if (ends_with(name, "att.w0")) return uniform(-6.0, 1.0);      // decay exp(-0.61 sigmoid(w0 + ...))
  if (ends_with(name, "att.a0") || ends_with(name, "att.v0")) return uniform(-1.0, 1.0);  // sigmoid gates
  if (ends_with(name, "att.w1") || ends_with(name, "att.a1") || ends_with(name, "att.v1") || ends_with(name, "att.g1")) {
    return normal(1.0 / std::sqrt(static_cast<double>(t.dim(0))));  // [D, r]: input D
  }
  if (ends_with(name, "att.w2") || ends_with(name, "att.a2") || ends_with(name, "att.v2")) {
    return normal(0.1 / std::sqrt(static_cast<double>(t.dim(0))));  // small LoRA corrections
  }
  if (ends_with(name, "att.g2")) return normal(1.0 / std::sqrt(static_cast<double>(t.dim(0))));
  if (ends_with(name, "att.k_k")) return uniform(0.7, 1.0);
  if (ends_with(name, "att.k_a")) return uniform(0.8, 1.2);
  if (ends_with(name, "att.r_k")) return normal(0.1);
  throw Error("synthetic model: no value rule for tensor '" + name + "'", kExitInternal);
}

}  // namespace

ModelDims synthetic_dims(const SyntheticModelOptions& o) {
  if (o.arch != ArchVersion::V5_2 && o.arch != ArchVersion::V7) {
    throw UsageError(std::string("synthesize: architecture ") + arch_name(o.arch) + " is not supported (v5.2 or v7)");
  }
  auto positive = [](const char* what, int64_t v, int64_t max) {
    if (v < 1 || v > max) throw UsageError(std::string("synthesize: ") + what + " " + std::to_string(v) + " must be in [1, " + std::to_string(max) + "]");
  };
  positive("layers", o.n_layer, 1024);
  positive("n_embd", o.n_embd, 1 << 16);
  positive("vocab", o.n_vocab, 1 << 22);
  positive("head size", o.head_size, o.n_embd);
  if (o.ffn_size < 0 || o.ffn_size > (int64_t{1} << 18)) throw UsageError("synthesize: ffn size must be in [0, 262144]");
  if (o.n_embd % o.head_size != 0) {
    throw UsageError("synthesize: head size " + std::to_string(o.head_size) + " does not divide n_embd " +
                     std::to_string(o.n_embd));
  }
  ModelDims d;
  d.n_layer = o.n_layer;
  d.n_embd = o.n_embd;
  d.n_vocab = o.n_vocab;
  d.head_size = o.head_size;
  d.n_head = o.n_embd / o.head_size;
  if (o.arch == ArchVersion::V5_2) {
    d.ffn_size = o.ffn_size > 0 ? o.ffn_size : round_to_32(3.5 * static_cast<double>(o.n_embd));
  } else {
    d.ffn_size = o.ffn_size > 0 ? o.ffn_size : 4 * o.n_embd;
    d.lora_w = lora_width(o.n_embd, 1.8, 0.5);
    d.lora_a = lora_width(o.n_embd, 1.8, 0.5);
    d.lora_v = lora_width(o.n_embd, 1.3, 0.5);
    d.lora_g = lora_width(o.n_embd, 0.6, 0.8);
  }
  return d;
}

Model make_synthetic_model(const SyntheticModelOptions& o) {
  Model m;
  m.arch = o.arch;
  m.dims = synthetic_dims(o);
  m.ln_x_eps = default_ln_x_eps(o.arch);
  m.source_format = "synthetic";
  uint64_t seed_state = o.seed;
  for (const TensorSpec& spec : expected_tensors(m.arch, m.dims)) {
    // One independent stream per tensor, so a tensor's values do not depend on the sizes of
    // those before it.
    SeededRandom rng(SeededRandom::splitmix64(seed_state));
    Tensor t(spec.shape);
    double ratio = 0;
    if (spec.name.rfind("blocks.", 0) == 0 && m.dims.n_layer > 1) {
      ratio = static_cast<double>(std::stoll(spec.name.substr(7))) / static_cast<double>(m.dims.n_layer - 1);
    }
    fill(spec.name, t, ratio, rng);
    m.tensors.emplace(spec.name, std::move(t));
    m.source_dtypes[spec.name] = "fp32";
  }
  finalize_and_validate(m, "synthetic model");
  return m;
}

}  // namespace rwkvlite
