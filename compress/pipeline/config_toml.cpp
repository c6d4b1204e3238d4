#include "compress/pipeline/config_toml.h"

#include <algorithm>

namespace rwkvlite {
namespace {

using json = nlohmann::ordered_json;

bool is_table_array(const json& v) {
  return v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_object(); });
}

// Bare keys as written, anything else as a quoted key.
std::string key_text(const std::string& key) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  return bare ? key : json(key).dump();
}

// JSON scalars and arrays of scalars are valid TOML values as nlohmann prints them: strings
// double-quoted with JSON escapes (a subset of TOML's), numbers in shortest round-trip form.
void emit_table(const std::string& header, const json& table, bool array_element, std::string& out) {
  if (!header.empty()) {
    if (!out.empty()) out += '\n';
    out += array_element ? "[[" : "[";
    out += header;
    out += array_element ? "]]\n" : "]\n";
  }
  for (const auto& [k, v] : table.items()) {
    if (!v.is_object() && !is_table_array(v)) out += key_text(k) + " = " + v.dump() + "\n";
  }
  for (const auto& [k, v] : table.items()) {
    const std::string sub = header.empty() ? key_text(k) : header + "." + key_text(k);
    if (v.is_object()) {
      emit_table(sub, v, false, out);
    } else if (is_table_array(v)) {
      for (const json& e : v) emit_table(sub, e, true, out);
    }
  }
}

}  // namespace

std::string resolved_config_toml(const nlohmann::ordered_json& resolved) {
  std::string out;
  if (resolved.contains("calibration")) emit_table("calibration", resolved["calibration"], false, out);
  for (const json& pass : resolved.value("passes", json::array())) emit_table("pass", pass, true, out);
  return out;
}

}  // namespace rwkvlite
