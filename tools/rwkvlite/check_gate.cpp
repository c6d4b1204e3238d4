#include "tools/rwkvlite/check_gate.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "runtime/core/error.h"

namespace rwkvlite::cli {

using nlohmann::ordered_json;

ordered_json read_json_report(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read " + what + " '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  ordered_json j;
  try {
    j = ordered_json::parse(text.str());
  } catch (const ordered_json::parse_error& e) {
    // nlohmann's message without its "[json.exception.parse_error.101] " prefix.
    std::string reason = e.what();
    if (const size_t at = reason.find("] "); at != std::string::npos) reason = reason.substr(at + 2);
    throw UsageError(what + " '" + path + "' is not valid JSON: " + reason);
  }
  if (!j.is_object()) throw UsageError(what + " '" + path + "' is not a JSON object but " + j.type_name());
  return j;
}

bool GateVerdict::passed() const {
  for (const GateRow& r : rows) {
    if (!r.passed) return false;
  }
  return true;
}

std::vector<std::string> GateVerdict::failed_metrics() const {
  std::vector<std::string> out;
  for (const GateRow& r : rows) {
    if (!r.passed && (out.empty() || out.back() != r.metric)) out.push_back(r.metric);
  }
  return out;
}

namespace {

// Reports compare only when they scored the same bytes the same way.
const char* const kSameTextKeys[] = {"tokenizer", "text_offset", "text_bytes", "interleave_zeros"};

void require_same_text(const ordered_json& baseline, const std::string& baseline_path, const ordered_json& current,
                       const std::string& current_path) {
  for (const char* key : kSameTextKeys) {
    if (!baseline.contains(key) || !current.contains(key)) continue;
    if (baseline[key] != current[key]) {
      throw UsageError("reports do not compare: " + std::string(key) + " is " + current[key].dump() + " in '" +
                       current_path + "' but " + baseline[key].dump() + " in baseline '" + baseline_path + "'");
    }
  }
}

double metric_value(const ordered_json& report, const std::string& path, const GatedMetric& m,
                    const std::string& limit_source) {
  const std::string where = "'" + path + "'";
  if (!report.contains(m.key)) {
    throw UsageError(where + " has no '" + m.key + "' (a limit on it is set by " + limit_source + ")");
  }
  const ordered_json& v = report[m.key];
  if (v.is_null()) {
    throw UsageError("'" + std::string(m.key) + "' is null in " + where +
                     " (evaluated without --reference?), but " + limit_source + " sets a limit on it");
  }
  if (!v.is_number()) {
    throw UsageError("'" + std::string(m.key) + "' in " + where + " must be a number, not " + v.type_name());
  }
  return v.get<double>();
}

std::string number(double v, bool is_byte_count) {
  char buf[64];
  std::snprintf(buf, sizeof buf, is_byte_count ? "%.0f" : "%.6g", v);
  return buf;
}

std::string limit_text(const GateRow& r) {
  char buf[64];
  if (r.limit == "max_increase_pct") {
    std::snprintf(buf, sizeof buf, "+%g%%", r.setting);
  } else if (r.limit == "max_decrease") {
    std::snprintf(buf, sizeof buf, "-%g", r.setting);
  } else {
    return r.limit + " " + number(r.setting, r.is_byte_count);
  }
  return buf;
}

// The change from the baseline: in percent for lower-is-better metrics (their relative limit
// is a percentage), as a difference for higher-is-better ones.
std::string change_text(const GateRow& r) {
  char buf[64];
  if (!r.lower_is_better) {
    std::snprintf(buf, sizeof buf, "%+.4f", r.current - r.baseline);
  } else if (r.baseline == 0) {
    return r.current == 0 ? "+0%" : "n/a";
  } else {
    std::snprintf(buf, sizeof buf, "%+.2f%%", 100.0 * (r.current - r.baseline) / r.baseline);
  }
  return buf;
}

}  // namespace

GateVerdict evaluate_gate(const ordered_json& baseline, const std::string& baseline_path, const ordered_json& current,
                          const std::string& current_path, const Thresholds& thresholds) {
  if (!thresholds.any()) {
    throw UsageError("no limits to check: give --thresholds FILE or a --max-*/--min-* flag");
  }
  require_same_text(baseline, baseline_path, current, current_path);
  GateVerdict verdict;
  for (size_t i = 0; i < gated_metrics().size(); ++i) {
    const GatedMetric& m = gated_metrics()[i];
    const MetricLimits& limits = thresholds.limits[i];
    if (!limits.any()) continue;
    const std::string& source = limits.bound.value ? limits.bound.source : limits.relative.source;
    GateRow row;
    row.metric = m.key;
    row.lower_is_better = m.lower_is_better;
    row.is_byte_count = m.is_byte_count;
    row.baseline = metric_value(baseline, baseline_path, m, source);
    row.current = metric_value(current, current_path, m, source);
    if (limits.relative.value) {
      GateRow r = row;
      r.limit = relative_key(m);
      r.setting = *limits.relative.value;
      r.allowed = m.lower_is_better ? r.baseline * (1.0 + r.setting / 100.0) : r.baseline - r.setting;
      r.passed = m.lower_is_better ? r.current <= r.allowed : r.current >= r.allowed;
      verdict.rows.push_back(r);
    }
    if (limits.bound.value) {
      GateRow r = row;
      r.limit = bound_key(m);
      r.setting = *limits.bound.value;
      r.allowed = r.setting;
      r.passed = m.lower_is_better ? r.current <= r.allowed : r.current >= r.allowed;
      verdict.rows.push_back(r);
    }
  }
  return verdict;
}

void print_gate_table(const GateVerdict& verdict, std::FILE* out) {
  std::fprintf(out, "%-28s %-14s %-14s %-14s %-16s %-10s %s\n", "metric", "limit", "baseline", "current", "allowed",
               "change", "verdict");
  for (const GateRow& r : verdict.rows) {
    const std::string allowed = (r.lower_is_better ? "<= " : ">= ") + number(r.allowed, r.is_byte_count);
    std::fprintf(out, "%-28s %-14s %-14s %-14s %-16s %-10s %s\n", r.metric.c_str(), limit_text(r).c_str(),
                 number(r.baseline, r.is_byte_count).c_str(), number(r.current, r.is_byte_count).c_str(),
                 allowed.c_str(), change_text(r).c_str(), r.passed ? "pass" : "FAIL");
  }
  size_t failed = 0;
  for (const GateRow& r : verdict.rows) failed += r.passed ? 0 : 1;
  if (failed == 0) {
    std::fprintf(out, "check passed: %zu of %zu limits hold\n", verdict.rows.size(), verdict.rows.size());
  } else {
    std::string names;
    for (const std::string& m : verdict.failed_metrics()) names += (names.empty() ? "" : ", ") + m;
    std::fprintf(out, "check FAILED: %zu of %zu limits broken (%s)\n", failed, verdict.rows.size(), names.c_str());
  }
}

ordered_json gate_json(const GateVerdict& verdict) {
  ordered_json rows = ordered_json::array();
  for (const GateRow& r : verdict.rows) {
    rows.push_back({{"metric", r.metric},
                    {"limit", r.limit},
                    {"setting", r.setting},
                    {"baseline", r.baseline},
                    {"current", r.current},
                    {"allowed", r.allowed},
                    {"passed", r.passed}});
  }
  return {{"passed", verdict.passed()}, {"failed_metrics", verdict.failed_metrics()}, {"limits", std::move(rows)}};
}

}  // namespace rwkvlite::cli
