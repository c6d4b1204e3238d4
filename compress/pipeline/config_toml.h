// The resolved form of a config (config.h) written back as a TOML config file, so a run's exact
// settings can be saved beside its outputs and compressed with again: parsing the text gives
// the same resolved JSON, hence the same config_hash.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace rwkvlite {

// {"calibration": {...}, "passes": [{"type": ..., ...}, ...]} -> "[calibration]\n...[[pass]]\n...".
// Nested objects become sub-tables, arrays of objects arrays of tables ([[pass.rules]]).
std::string resolved_config_toml(const nlohmann::ordered_json& resolved);

}  // namespace rwkvlite
