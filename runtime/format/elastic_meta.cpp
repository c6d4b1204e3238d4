#include "runtime/format/elastic_meta.h"

#include <cmath>
#include <set>

#include "runtime/core/error.h"

namespace rwkvlite::layout {
namespace {

const nlohmann::json& member(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) throw InputError(where + ": metadata 'elastic' lacks '" + key + "'");
  return *it;
}

std::string string_member(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json& v = member(j, key, where);
  if (!v.is_string()) throw InputError(where + ": metadata 'elastic' field '" + key + "' must be a string");
  return v.get<std::string>();
}

int64_t count_member(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json& v = member(j, key, where);
  if (!v.is_number_integer() || v.get<int64_t>() < 0)
    throw InputError(where + ": metadata 'elastic' field '" + key + "' must be an integer >= 0");
  return v.get<int64_t>();
}

double number_member(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json& v = member(j, key, where);
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    throw InputError(where + ": metadata 'elastic' field '" + key + "' must be a finite number");
  return v.get<double>();
}

const nlohmann::json& array_member(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json& v = member(j, key, where);
  if (!v.is_array()) throw InputError(where + ": metadata 'elastic' field '" + key + "' must be an array");
  return v;
}

}  // namespace

std::string elastic_variant(std::string_view logical, std::string_view fidelity) {
  return std::string(logical) + kElasticSeparator + std::string(fidelity);
}

bool is_elastic_variant(std::string_view name) { return name.find(kElasticSeparator) != std::string_view::npos; }

std::string elastic_logical(std::string_view name) { return std::string(name.substr(0, name.find(kElasticSeparator))); }

nlohmann::ordered_json ElasticMeta::to_json() const {
  nlohmann::ordered_json j = {{"method", method},
                              {"base_bits_per_byte", base_bits_per_byte},
                              {"dense_fp16_bytes", dense_fp16_bytes},
                              {"tokens_scored", tokens_scored},
                              {"profile_xxh64", profile_xxh64}};
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (const ElasticItem& item : items) {
    nlohmann::ordered_json choices = nlohmann::ordered_json::array();
    for (const ElasticChoice& c : item.choices)
      choices.push_back({{"fidelity", c.fidelity}, {"bytes", c.bytes}, {"cost", c.cost}, {"tensors", c.tensors}});
    all.push_back({{"name", item.name}, {"choices", std::move(choices)}});
  }
  j["items"] = std::move(all);
  return j;
}

std::optional<ElasticMeta> ElasticMeta::from_json(const nlohmann::json& metadata, const std::string& where) {
  if (!metadata.is_object()) return std::nullopt;
  const auto it = metadata.find(kKey);
  if (it == metadata.end()) return std::nullopt;
  const nlohmann::json& j = *it;
  if (!j.is_object()) throw InputError(where + ": metadata 'elastic' must be an object");
  ElasticMeta meta;
  meta.method = string_member(j, "method", where);
  meta.base_bits_per_byte = number_member(j, "base_bits_per_byte", where);
  meta.dense_fp16_bytes = count_member(j, "dense_fp16_bytes", where);
  meta.tokens_scored = count_member(j, "tokens_scored", where);
  meta.profile_xxh64 = string_member(j, "profile_xxh64", where);
  std::set<std::string> item_names, tensor_names;
  for (const nlohmann::json& e : array_member(j, "items", where)) {
    if (!e.is_object()) throw InputError(where + ": metadata 'elastic.items' entries must be objects");
    ElasticItem item;
    item.name = string_member(e, "name", where);
    const std::string iw = where + " elastic item '" + item.name + "'";
    if (!item_names.insert(item.name).second) throw InputError(iw + ": listed twice");
    std::set<std::string> fidelities;
    for (const nlohmann::json& c : array_member(e, "choices", iw)) {
      if (!c.is_object()) throw InputError(iw + ": choices must be objects");
      ElasticChoice choice;
      choice.fidelity = string_member(c, "fidelity", iw);
      if (!fidelities.insert(choice.fidelity).second) throw InputError(iw + ": fidelity '" + choice.fidelity + "' twice");
      choice.bytes = count_member(c, "bytes", iw);
      choice.cost = number_member(c, "cost", iw);
      for (const nlohmann::json& t : array_member(c, "tensors", iw)) {
        if (!t.is_string()) throw InputError(iw + ": tensor names must be strings");
        const std::string name = t.get<std::string>();
        if (!is_elastic_variant(name)) throw InputError(iw + ": tensor '" + name + "' is not a stored form (<name>@<fidelity>)");
        if (!tensor_names.insert(name).second) throw InputError(iw + ": tensor '" + name + "' is listed twice");
        choice.tensors.push_back(name);
      }
      if (choice.tensors.empty()) throw InputError(iw + ": choice '" + choice.fidelity + "' has no tensors");
      item.choices.push_back(std::move(choice));
    }
    if (item.choices.empty()) throw InputError(iw + ": no choices");
    meta.items.push_back(std::move(item));
  }
  return meta;
}

}  // namespace rwkvlite::layout
