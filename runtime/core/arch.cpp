#include "runtime/core/arch.h"

#include <cmath>
#include <sstream>

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

std::string blk(int64_t i, const char* rest) { return "blocks." + std::to_string(i) + "." + rest; }

// Looks up a shape, recording a problem instead of throwing so that all problems are reported.
struct ShapeLookup {
  const std::map<std::string, std::vector<int64_t>>& shapes;
  std::vector<std::string>& problems;

  const std::vector<int64_t>* get(const std::string& name) {
    auto it = shapes.find(name);
    if (it == shapes.end()) {
      problems.push_back("missing tensor '" + name + "'");
      return nullptr;
    }
    return &it->second;
  }
  // Dimension `axis` of tensor `name`, or 0 (and a problem) if unavailable.
  int64_t dim(const std::string& name, size_t axis) {
    const auto* s = get(name);
    if (!s) return 0;
    if (axis >= s->size()) {
      problems.push_back("tensor '" + name + "' has shape " + shape_to_string(*s) + ", expected at least " +
                         std::to_string(axis + 1) + " dimensions");
      return 0;
    }
    return (*s)[axis];
  }
};

[[noreturn]] void throw_problems(const std::string& what, const std::vector<std::string>& problems) {
  std::ostringstream os;
  os << what << ": " << problems.size() << " problem" << (problems.size() == 1 ? "" : "s");
  const size_t shown = std::min<size_t>(problems.size(), 40);
  for (size_t i = 0; i < shown; ++i) os << "\n  - " << problems[i];
  if (shown < problems.size()) os << "\n  ... and " << (problems.size() - shown) << " more";
  throw InputError(os.str());
}

}  // namespace

ArchVersion detect_arch(const std::set<std::string>& names) {
  if (names.count("blocks.0.att.r_k")) return ArchVersion::V7;
  if (names.count("blocks.0.att.time_maa_x")) return ArchVersion::V6;
  if (names.count("blocks.0.att.ln_x.weight")) {
    return names.count("blocks.0.att.gate.weight") ? ArchVersion::V5_2 : ArchVersion::V5_1;
  }
  if (names.count("blocks.0.att.time_mix_k")) return ArchVersion::V4;
  std::ostringstream os;
  os << "cannot recognise an RWKV architecture from the tensor names (no blocks.0.att.r_k, time_maa_x, ln_x or "
        "time_mix_k); the file has "
     << names.size() << " tensors";
  size_t shown = 0;
  for (const auto& n : names) {
    if (shown++ == 6) {
      os << ", ...";
      break;
    }
    os << (shown == 1 ? ": " : ", ") << n;
  }
  throw InputError(os.str());
}

ModelDims derive_dims(ArchVersion arch, const std::map<std::string, std::vector<int64_t>>& shapes) {
  std::vector<std::string> problems;
  ShapeLookup look{shapes, problems};
  ModelDims d;
  d.n_vocab = look.dim("emb.weight", 0);
  d.n_embd = look.dim("emb.weight", 1);
  while (shapes.count(blk(d.n_layer, "ln1.weight"))) ++d.n_layer;
  if (d.n_layer == 0) problems.push_back("no layers found (missing 'blocks.0.ln1.weight')");
  if (d.n_layer > 0) d.ffn_size = look.dim("blocks.0.ffn.key.weight", 0);
  switch (arch) {
    case ArchVersion::V4:
      break;
    case ArchVersion::V5_1: {
      const auto* s = look.get("blocks.0.att.time_decay");
      if (s) {
        d.n_head = Tensor::numel_of(*s);
      }
      break;
    }
    case ArchVersion::V5_2:
    case ArchVersion::V6:
      d.n_head = look.dim("blocks.0.att.time_faaaa", 0);
      if (arch == ArchVersion::V6) {
        const int64_t w1 = look.dim("blocks.0.att.time_maa_w1", 1);
        if (w1 % 5 != 0) problems.push_back("att.time_maa_w1 width " + std::to_string(w1) + " is not a multiple of 5");
        d.lora_maa = w1 / 5;
        d.lora_decay = look.dim("blocks.0.att.time_decay_w1", 1);
      }
      break;
    case ArchVersion::V7:
      d.n_head = look.dim("blocks.0.att.r_k", 0);
      d.lora_w = look.dim("blocks.0.att.w1", 1);
      d.lora_a = look.dim("blocks.0.att.a1", 1);
      d.lora_g = look.dim("blocks.0.att.g1", 1);
      // Layer 0 never uses the value-residual LoRA, so take its width from layer 1.
      if (d.n_layer > 1) {
        d.lora_v = look.dim("blocks.1.att.v1", 1);
      } else if (shapes.count("blocks.0.att.v1")) {
        d.lora_v = look.dim("blocks.0.att.v1", 1);
      }
      break;
  }
  if (arch != ArchVersion::V4 && d.n_head > 0) {
    if (d.n_embd % d.n_head != 0) {
      problems.push_back("embedding width " + std::to_string(d.n_embd) + " is not divisible by the head count " +
                         std::to_string(d.n_head));
    } else {
      d.head_size = d.n_embd / d.n_head;
    }
  } else if (arch != ArchVersion::V4 && problems.empty()) {
    problems.push_back("head count is zero");
  }
  for (int64_t v : {d.n_vocab, d.n_embd, d.ffn_size}) {
    if (v <= 0 && problems.empty()) problems.push_back("a model dimension is zero or negative");
  }
  if (!problems.empty()) throw_problems("cannot derive the model dimensions", problems);
  return d;
}

std::vector<TensorSpec> expected_tensors(ArchVersion arch, const ModelDims& d) {
  const int64_t D = d.n_embd, V = d.n_vocab, F = d.ffn_size, H = d.n_head, S = d.head_size;
  const std::vector<int64_t> vecD{D}, mixD{1, 1, D}, sq{D, D};
  std::vector<TensorSpec> out;
  auto add = [&](std::string name, std::vector<int64_t> shape, bool optional = false) {
    out.push_back({std::move(name), std::move(shape), optional});
  };
  add("emb.weight", {V, D});
  for (int64_t i = 0; i < d.n_layer; ++i) {
    if (i == 0) {
      add(blk(0, "ln0.weight"), vecD);
      add(blk(0, "ln0.bias"), vecD);
    }
    add(blk(i, "ln1.weight"), vecD);
    add(blk(i, "ln1.bias"), vecD);
    add(blk(i, "ln2.weight"), vecD);
    add(blk(i, "ln2.bias"), vecD);
    switch (arch) {
      case ArchVersion::V4:
        add(blk(i, "att.time_decay"), vecD);
        add(blk(i, "att.time_first"), vecD);
        for (const char* m : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r"}) add(blk(i, m), mixD);
        break;
      case ArchVersion::V5_1:
        add(blk(i, "att.time_decay"), {H});
        add(blk(i, "att.time_first"), {H});
        for (const char* m : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r"}) add(blk(i, m), mixD);
        add(blk(i, "att.ln_x.weight"), vecD);
        add(blk(i, "att.ln_x.bias"), vecD);
        break;
      case ArchVersion::V5_2:
        add(blk(i, "att.time_decay"), {H, S});
        add(blk(i, "att.time_faaaa"), {H, S});
        for (const char* m : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r", "att.time_mix_g"}) {
          add(blk(i, m), mixD);
        }
        add(blk(i, "att.gate.weight"), sq);
        add(blk(i, "att.ln_x.weight"), vecD);
        add(blk(i, "att.ln_x.bias"), vecD);
        break;
      case ArchVersion::V6:
        for (const char* m : {"att.time_maa_x", "att.time_maa_w", "att.time_maa_k", "att.time_maa_v", "att.time_maa_r",
                              "att.time_maa_g"}) {
          add(blk(i, m), mixD);
        }
        add(blk(i, "att.time_maa_w1"), {D, 5 * d.lora_maa});
        add(blk(i, "att.time_maa_w2"), {5, d.lora_maa, D});
        add(blk(i, "att.time_decay"), mixD);
        add(blk(i, "att.time_decay_w1"), {D, d.lora_decay});
        add(blk(i, "att.time_decay_w2"), {d.lora_decay, D});
        add(blk(i, "att.time_faaaa"), {H, S});
        add(blk(i, "att.gate.weight"), sq);
        add(blk(i, "att.ln_x.weight"), vecD);
        add(blk(i, "att.ln_x.bias"), vecD);
        break;
      case ArchVersion::V7:
        for (const char* m : {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g"}) add(blk(i, m), mixD);
        add(blk(i, "att.w0"), mixD);
        add(blk(i, "att.w1"), {D, d.lora_w});
        add(blk(i, "att.w2"), {d.lora_w, D});
        add(blk(i, "att.a0"), mixD);
        add(blk(i, "att.a1"), {D, d.lora_a});
        add(blk(i, "att.a2"), {d.lora_a, D});
        add(blk(i, "att.v0"), mixD, i == 0);
        add(blk(i, "att.v1"), {D, d.lora_v}, i == 0);
        add(blk(i, "att.v2"), {d.lora_v, D}, i == 0);
        add(blk(i, "att.g1"), {D, d.lora_g});
        add(blk(i, "att.g2"), {d.lora_g, D});
        add(blk(i, "att.k_k"), mixD);
        add(blk(i, "att.k_a"), mixD);
        add(blk(i, "att.r_k"), {H, S});
        add(blk(i, "att.ln_x.weight"), vecD);
        add(blk(i, "att.ln_x.bias"), vecD);
        break;
    }
    add(blk(i, "att.receptance.weight"), sq);
    add(blk(i, "att.key.weight"), sq);
    add(blk(i, "att.value.weight"), sq);
    add(blk(i, "att.output.weight"), sq);
    switch (arch) {
      case ArchVersion::V7:
        add(blk(i, "ffn.x_k"), mixD);
        break;
      case ArchVersion::V6:
        add(blk(i, "ffn.time_maa_k"), mixD);
        add(blk(i, "ffn.time_maa_r"), mixD);
        break;
      default:
        add(blk(i, "ffn.time_mix_k"), mixD);
        add(blk(i, "ffn.time_mix_r"), mixD);
        break;
    }
    add(blk(i, "ffn.key.weight"), {F, D});
    if (arch != ArchVersion::V7) add(blk(i, "ffn.receptance.weight"), sq);
    add(blk(i, "ffn.value.weight"), {D, F});
  }
  add("ln_out.weight", vecD);
  add("ln_out.bias", vecD);
  add("head.weight", {V, D});
  return out;
}

void finalize_and_validate(Model& model, const std::string& source) {
  std::set<std::string> names;
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& [name, t] : model.tensors) {
    names.insert(name);
    shapes[name] = t.shape;
  }
  model.arch = detect_arch(names);
  try {
    model.dims = derive_dims(model.arch, shapes);
  } catch (const InputError& e) {
    throw InputError(source + ": " + e.what());
  }

  std::vector<std::string> problems;
  std::set<std::string> expected;
  for (const TensorSpec& spec : expected_tensors(model.arch, model.dims)) {
    expected.insert(spec.name);
    auto it = model.tensors.find(spec.name);
    if (it == model.tensors.end()) {
      if (!spec.optional) problems.push_back("missing tensor '" + spec.name + "'");
      continue;
    }
    if (it->second.shape != spec.shape) {
      problems.push_back("tensor '" + spec.name + "' has shape " + shape_to_string(it->second.shape) + ", expected " +
                         shape_to_string(spec.shape) + " for " + arch_name(model.arch));
    }
  }
  for (const auto& [name, t] : model.tensors) {
    if (!expected.count(name)) problems.push_back("unknown tensor '" + name + "' for " + std::string(arch_name(model.arch)));
    if (static_cast<int64_t>(t.data.size()) != t.numel()) {
      problems.push_back("tensor '" + name + "' holds " + std::to_string(t.data.size()) + " values for shape " +
                         shape_to_string(t.shape));
      continue;
    }
    int64_t bad = 0;
    for (float v : t.data) bad += !std::isfinite(v);
    if (bad) problems.push_back("tensor '" + name + "' has " + std::to_string(bad) + " NaN or Inf values");
  }
  if (!problems.empty()) throw_problems(source + ": not a valid RWKV " + std::string(arch_name(model.arch)) + " model", problems);
}

std::vector<std::string> ordered_tensor_names(const Model& model) {
  std::vector<std::string> out;
  for (const TensorSpec& spec : expected_tensors(model.arch, model.dims)) {
    if (model.has(spec.name)) out.push_back(spec.name);
  }
  return out;
}

}  // namespace rwkvlite
