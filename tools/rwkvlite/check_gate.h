// The comparison of `rwkvlite check`: an evaluation report (the one schema of `rwkvlite eval
// --json` and `rwkvlite-run --json`, tools/common/text_eval.h) against a baseline report, one
// row per limit, and the verdict as a table and as JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "tools/rwkvlite/check_thresholds.h"

namespace rwkvlite::cli {

// A JSON report file: UsageError (exit 2, one line) when it cannot be read, is not JSON, or is
// not a JSON object. `what` names it in messages ("report", "baseline").
nlohmann::ordered_json read_json_report(const std::string& path, const std::string& what);

// One limit applied: `allowed` is the bound on the current value it works out to.
struct GateRow {
  std::string metric;
  std::string limit;  // the TOML key: "max", "max_increase_pct", "min", "max_decrease"
  double setting = 0;  // the limit as given (a value, a percentage or a drop)
  double baseline = 0, current = 0, allowed = 0;
  bool lower_is_better = true;
  bool is_byte_count = false;
  bool passed = false;
};

struct GateVerdict {
  std::vector<GateRow> rows;
  bool passed() const;
  std::vector<std::string> failed_metrics() const;  // each failing metric once, in table order
};

// Applies every set limit to `current` against `baseline`. UsageError (exit 2) when no limit is
// set, when a limited metric is missing, null or not a number in either report (naming where
// the limit came from), or when the two reports did not score the same text the same way
// (tokenizer, text_offset, text_bytes, interleave_zeros: bits per byte would not compare).
// Paths (model, text, reference) are never compared.
GateVerdict evaluate_gate(const nlohmann::ordered_json& baseline, const std::string& baseline_path,
                          const nlohmann::ordered_json& current, const std::string& current_path,
                          const Thresholds& thresholds);

// The table: metric, limit, baseline, current, allowed, verdict (with the change), and a
// summary line.
void print_gate_table(const GateVerdict& verdict, std::FILE* out);

nlohmann::ordered_json gate_json(const GateVerdict& verdict);

}  // namespace rwkvlite::cli
