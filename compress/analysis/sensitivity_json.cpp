#include "compress/analysis/sensitivity_json.h"

#include <cmath>

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

using nlohmann::ordered_json;
constexpr const char* kSchema = "rwkvlite.sensitivity/1";

ordered_json optional_number(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? ordered_json(*v) : ordered_json(nullptr);
}

// Field readers naming the path of what is wrong.
const ordered_json& member(const ordered_json& j, const char* key, const std::string& at) {
  if (!j.is_object() || !j.contains(key)) throw InputError("sensitivity profile: missing " + at + "." + key);
  return j.at(key);
}
double number(const ordered_json& j, const char* key, const std::string& at) {
  const auto& v = member(j, key, at);
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    throw InputError("sensitivity profile: " + at + "." + key + " is not a finite number");
  return v.get<double>();
}
std::optional<double> optional(const ordered_json& j, const char* key, const std::string& at) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return number(j, key, at);
}
int64_t count(const ordered_json& j, const char* key, const std::string& at) {
  const auto& v = member(j, key, at);
  if (!v.is_number_integer() || v.get<int64_t>() < 0)
    throw InputError("sensitivity profile: " + at + "." + key + " is not a non-negative integer");
  return v.get<int64_t>();
}
std::string text(const ordered_json& j, const char* key, const std::string& at) {
  const auto& v = member(j, key, at);
  if (!v.is_string()) throw InputError("sensitivity profile: " + at + "." + key + " is not a string");
  return v.get<std::string>();
}
const ordered_json& array(const ordered_json& j, const char* key, const std::string& at) {
  const auto& v = member(j, key, at);
  if (!v.is_array()) throw InputError("sensitivity profile: " + at + "." + key + " is not an array");
  return v;
}

}  // namespace

ordered_json profile_to_json(const SensitivityProfile& p) {
  ordered_json j;
  j["schema"] = kSchema;
  j["mode"] = p.mode;
  j["method"] = p.method;
  j["fidelities"] = p.fidelities;
  j["probe"] = p.probe;
  j["tokens_scored"] = p.tokens_scored;
  j["base_bits_per_byte"] = p.base_bits_per_byte;
  j["profiled_parameters"] = p.profiled_parameters;
  j["fixed_bytes"] = p.fixed_bytes;
  j["dense_fp16_bytes"] = p.dense_fp16_bytes;
  j["evaluations"] = p.evaluations;
  j["seconds"] = p.seconds;
  j["proxy_spearman_all"] = optional_number(p.proxy_spearman_all);
  ordered_json per = ordered_json::object();
  for (const auto& [f, rho] : p.proxy_spearman_per_fidelity) per[f] = optional_number(rho);
  j["proxy_spearman_per_fidelity"] = per;
  ordered_json tensors = ordered_json::array();
  for (const auto& t : p.tensors) {
    ordered_json costs = ordered_json::array();
    for (const auto& c : t.costs) {
      costs.push_back({{"encoding", c.encoding},
                       {"available", c.available},
                       {"bytes", c.bytes},
                       {"relative_error", c.relative_error},
                       {"output_error", optional_number(c.output_error)},
                       {"cost", c.cost},
                       {"measured", c.measured},
                       {"proxy_cost", optional_number(c.proxy_cost)},
                       {"direct_cost", optional_number(c.direct_cost)},
                       {"delta_bits_per_byte", optional_number(c.delta_bits_per_byte)}});
    }
    tensors.push_back({{"name", t.name}, {"rows", t.rows}, {"cols", t.cols}, {"costs", costs}});
  }
  j["tensors"] = tensors;
  return j;
}

SensitivityProfile profile_from_json(const ordered_json& j) {
  if (!j.is_object()) throw InputError("sensitivity profile: not a JSON object");
  const std::string schema = text(j, "schema", "$");
  if (schema != kSchema) throw InputError("sensitivity profile: schema '" + schema + "' is not " + kSchema);
  SensitivityProfile p;
  p.mode = text(j, "mode", "$");
  // Profiles written before gptq profiles have no "method": they are round to nearest.
  p.method = j.contains("method") ? text(j, "method", "$") : "rtn";
  if (p.method != "rtn" && p.method != "gptq")
    throw InputError("sensitivity profile: $.method is '" + p.method + "', not rtn or gptq");
  for (const auto& f : array(j, "fidelities", "$")) {
    if (!f.is_string()) throw InputError("sensitivity profile: $.fidelities holds a non-string");
    p.fidelities.push_back(f.get<std::string>());
  }
  p.probe = text(j, "probe", "$");
  p.tokens_scored = count(j, "tokens_scored", "$");
  p.base_bits_per_byte = number(j, "base_bits_per_byte", "$");
  p.profiled_parameters = count(j, "profiled_parameters", "$");
  p.fixed_bytes = count(j, "fixed_bytes", "$");
  p.dense_fp16_bytes = count(j, "dense_fp16_bytes", "$");
  p.evaluations = count(j, "evaluations", "$");
  p.seconds = number(j, "seconds", "$");
  p.proxy_spearman_all = optional(j, "proxy_spearman_all", "$");
  const auto& per = member(j, "proxy_spearman_per_fidelity", "$");
  if (!per.is_object()) throw InputError("sensitivity profile: $.proxy_spearman_per_fidelity is not an object");
  for (const auto& [f, rho] : per.items()) {
    const auto value = optional(per, f.c_str(), "$.proxy_spearman_per_fidelity");
    p.proxy_spearman_per_fidelity.emplace_back(f, value.value_or(std::nan("")));
  }
  const auto& tensors = array(j, "tensors", "$");
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string at = "$.tensors[" + std::to_string(i) + "]";
    const auto& tj = tensors[i];
    TensorSensitivity t;
    t.name = text(tj, "name", at);
    t.rows = count(tj, "rows", at);
    t.cols = count(tj, "cols", at);
    const auto& costs = array(tj, "costs", at);
    if (costs.size() != p.fidelities.size())
      throw InputError("sensitivity profile: " + at + ".costs has " + std::to_string(costs.size()) +
                       " entries for " + std::to_string(p.fidelities.size()) + " fidelities");
    for (size_t k = 0; k < costs.size(); ++k) {
      const std::string cat = at + ".costs[" + std::to_string(k) + "]";
      FidelityCost c;
      c.encoding = text(costs[k], "encoding", cat);
      if (c.encoding != p.fidelities[k])
        throw InputError("sensitivity profile: " + cat + ".encoding is '" + c.encoding + "', expected '" +
                         p.fidelities[k] + "'");
      // Profiles written before low-rank fidelities have no "available": every cost applies.
      if (costs[k].contains("available")) {
        const auto& available = costs[k].at("available");
        if (!available.is_boolean()) throw InputError("sensitivity profile: " + cat + ".available is not a boolean");
        c.available = available.get<bool>();
      }
      c.bytes = count(costs[k], "bytes", cat);
      c.relative_error = number(costs[k], "relative_error", cat);
      c.output_error = optional(costs[k], "output_error", cat);
      c.cost = number(costs[k], "cost", cat);
      const auto& measured = member(costs[k], "measured", cat);
      if (!measured.is_boolean()) throw InputError("sensitivity profile: " + cat + ".measured is not a boolean");
      c.measured = measured.get<bool>();
      c.proxy_cost = optional(costs[k], "proxy_cost", cat);
      c.direct_cost = optional(costs[k], "direct_cost", cat);
      c.delta_bits_per_byte = optional(costs[k], "delta_bits_per_byte", cat);
      t.costs.push_back(c);
    }
    p.tensors.push_back(std::move(t));
  }
  return p;
}

}  // namespace rwkvlite
