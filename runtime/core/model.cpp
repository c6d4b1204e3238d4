#include "runtime/core/model.h"

#include <sstream>

#include "runtime/core/error.h"

namespace rwkvlite {

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

Tensor transposed(const Tensor& m) {
  const int64_t rows = m.rows(), cols = m.cols();
  Tensor t;
  t.shape = {cols, rows};
  if (m.data.empty()) return t;
  t.data.resize(m.data.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) t.data[static_cast<size_t>(c * rows + r)] = m.data[static_cast<size_t>(r * cols + c)];
  }
  return t;
}

const char* arch_name(ArchVersion a) {
  switch (a) {
    case ArchVersion::V4: return "v4";
    case ArchVersion::V5_1: return "v5.1";
    case ArchVersion::V5_2: return "v5.2";
    case ArchVersion::V6: return "v6";
    case ArchVersion::V7: return "v7";
  }
  return "unknown";
}

ArchVersion arch_from_name(const std::string& s) {
  for (ArchVersion a : {ArchVersion::V4, ArchVersion::V5_1, ArchVersion::V5_2, ArchVersion::V6, ArchVersion::V7}) {
    if (s == arch_name(a)) return a;
  }
  throw UsageError("unknown architecture '" + s + "' (expected v4, v5.1, v5.2, v6 or v7)");
}

const Tensor& Model::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw InputError("model has no tensor '" + name + "'");
  return it->second;
}

Tensor& Model::at(const std::string& name) {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw InputError("model has no tensor '" + name + "'");
  return it->second;
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, t] : tensors) n += t.numel();
  return n;
}

std::string component_of(const std::string& name) {
  if (name == "emb.weight") return "embedding";
  if (name == "head.weight") return "head";
  if (name.find(".att.") != std::string::npos) return "time_mix";
  if (name.find(".ffn.") != std::string::npos) return "channel_mix";
  return "norms";  // ln0, ln1, ln2, ln_out
}

float default_ln_x_eps(ArchVersion) { return 64e-5f; }

}  // namespace rwkvlite
