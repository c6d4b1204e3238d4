#include "runtime/format/model_json.h"

#include <cmath>
#include <limits>
#include <utility>

#include "runtime/core/arch.h"
#include "runtime/core/error.h"

namespace rwkvlite::format {

namespace {

// Field name and member of every ModelDims field, so writing and reading cannot drift apart.
const std::pair<const char*, int64_t ModelDims::*> kDimFields[] = {
    {"n_layer", &ModelDims::n_layer},   {"n_embd", &ModelDims::n_embd},         {"n_vocab", &ModelDims::n_vocab},
    {"n_head", &ModelDims::n_head},     {"head_size", &ModelDims::head_size},   {"ffn_size", &ModelDims::ffn_size},
    {"lora_maa", &ModelDims::lora_maa}, {"lora_decay", &ModelDims::lora_decay}, {"lora_w", &ModelDims::lora_w},
    {"lora_a", &ModelDims::lora_a},     {"lora_v", &ModelDims::lora_v},         {"lora_g", &ModelDims::lora_g},
};

}  // namespace

nlohmann::json arch_to_json(ArchVersion arch, float ln_x_eps) {
  return {{"version", arch_name(arch)}, {"ln_x_eps", ln_x_eps}};
}

ArchInfo arch_from_json(const nlohmann::json& arch) {
  if (!arch.is_object()) throw InputError("compact header: 'arch' must be a JSON object");
  ArchInfo info;
  const auto version = arch.find("version");
  if (version == arch.end() || !version->is_string()) {
    throw InputError("compact header: 'arch' has no string field 'version'");
  }
  try {
    info.arch = arch_from_name(version->get<std::string>());
  } catch (const UsageError& e) {
    throw InputError(std::string("compact header: ") + e.what());
  }
  const auto eps = arch.find("ln_x_eps");
  if (eps == arch.end() || !eps->is_number()) throw InputError("compact header: 'arch' has no number field 'ln_x_eps'");
  const double v = eps->get<double>();
  if (!plausible_ln_x_eps(v)) {
    throw InputError("compact header: 'arch.ln_x_eps' is " + std::to_string(v) + ", not in (0, " +
                     std::to_string(kMaxLnXEps) + "]");
  }
  info.ln_x_eps = static_cast<float>(v);  // written from a float: converts back exactly
  return info;
}

nlohmann::json dims_to_json(const ModelDims& dims) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, member] : kDimFields) j[name] = dims.*member;
  return j;
}

ModelDims dims_from_json(const nlohmann::json& dims) {
  if (!dims.is_object()) throw InputError("compact header: 'dims' must be a JSON object");
  ModelDims out;
  for (const auto& [name, member] : kDimFields) {
    const auto it = dims.find(name);
    // Parsed JSON holds non-negative integers as unsigned; JSON built in memory from int64 as signed.
    const bool ok = it != dims.end() &&
                    ((it->is_number_unsigned() &&
                      it->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) ||
                     (it->is_number_integer() && !it->is_number_unsigned() && it->get<int64_t>() >= 0));
    if (!ok) throw InputError(std::string("compact header: 'dims' needs '") + name + "' as a non-negative integer");
    out.*member = it->is_number_unsigned() ? static_cast<int64_t>(it->get<uint64_t>()) : it->get<int64_t>();
  }
  return out;
}

}  // namespace rwkvlite::format
