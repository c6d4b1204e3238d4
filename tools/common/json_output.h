// JSON output of the front doors: a document goes to a file atomically (never half-written),
// or alone on stdout for "-" so `--json - | jq` always parses; the human-readable table of a
// report goes to stdout only when the JSON does not.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

namespace rwkvlite::tools {

// `j` with a 2-space indent and a final newline, to `path` ("-": stdout).
void write_json(const std::string& path, const nlohmann::ordered_json& j);

// One line per scalar ("key  value", floats to 6 significant digits), and objects one level
// deep as key.member; arrays (per-layer tables) appear in the JSON only.
void print_report_table(const nlohmann::ordered_json& report, std::FILE* out);

// The report stage: the table on stdout unless `json_path` is "-", then the JSON to
// `json_path` when one is given.
void publish_report(const nlohmann::ordered_json& report, const std::string& json_path);

}  // namespace rwkvlite::tools
