// Metadata "elastic" of an elastic compact file (docs/compact-format.md, section 6; written by
// the elastic pass, compress/passes/elastic_pass.h): every profiled matrix stored at several
// fidelities, each stored form a tensor named "<logical name>@<fidelity>", with the profile's
// predicted cost of each, so that the runtime chooses per matrix at load time, for a memory
// budget, with the same planner as `rwkvlite plan` (runtime/plan/budget_planner.h).
//
//   {"method": "gptq", "base_bits_per_byte": x, "dense_fp16_bytes": n, "tokens_scored": n,
//    "profile_xxh64": "16 hex digits",
//    "items": [{"name": "blocks.0.att.key.weight",
//               "choices": [{"fidelity": "i4g64", "bytes": n, "cost": x,
//                            "tensors": ["blocks.0.att.key.weight@i4g64"]}, ...]}, ...]}
//
// A choice's tensors answer, once chosen, to the name before their '@' (a low-rank choice has
// two: "<base>.lr_a@lr64:i4g64" and "<base>.lr_b@lr64:i4g64"); its bytes are their stored bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace rwkvlite::layout {

constexpr char kElasticSeparator = '@';
// "<logical>@<fidelity>".
std::string elastic_variant(std::string_view logical, std::string_view fidelity);
// Whether `name` is a stored form of an elastic matrix (it contains '@').
bool is_elastic_variant(std::string_view name);
// The name a stored form answers to once chosen: the part before '@' (the name itself otherwise).
std::string elastic_logical(std::string_view name);

struct ElasticChoice {
  std::string fidelity;
  int64_t bytes = 0;
  double cost = 0;  // predicted KL in bits per byte of holding the matrix this way
  std::vector<std::string> tensors;
};

struct ElasticItem {
  std::string name;  // the matrix, as the profile names it
  std::vector<ElasticChoice> choices;
};

struct ElasticMeta {
  static constexpr const char* kKey = "elastic";
  std::string method;             // the profile's pricing: "rtn" or "gptq"
  double base_bits_per_byte = 0;  // the dense model on the profile's calibration text
  int64_t dense_fp16_bytes = 0;   // every parameter at 2 bytes: a percentage budget's 100%
  int64_t tokens_scored = 0;
  std::string profile_xxh64;      // of the profile file the costs came from
  std::vector<ElasticItem> items;

  nlohmann::ordered_json to_json() const;
  // nullopt when the metadata has no "elastic". InputError (naming `where`) when it is not as
  // above: wrong types, an item without choices, a negative byte count, a non-finite cost, a
  // repeated item, fidelity or tensor, or a tensor name that is not "<item's logical>@...".
  static std::optional<ElasticMeta> from_json(const nlohmann::json& metadata, const std::string& where);
};

}  // namespace rwkvlite::layout
