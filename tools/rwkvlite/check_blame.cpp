#include "tools/rwkvlite/check_blame.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>

#include "runtime/core/error.h"

namespace rwkvlite::cli {

using nlohmann::ordered_json;

double TensorErrorChange::relative_growth() const {
  if (baseline_error == 0) return current_error > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  return (current_error - baseline_error) / baseline_error;
}

namespace {

// The metrics a pass reports per tensor (compress/pipeline/pass.h), and how each reads as an error.
struct MeasuredRow {
  std::string metric;
  double value = 0, error = 0;
};

const char* const kErrorMetrics[] = {"rel_err", "kl"};
const char* const kScoreMetrics[] = {"recall"};  // higher is better: error = 1 - value

using RowKey = std::tuple<std::string, std::string, int>;  // pass, tensor, occurrence

std::map<RowKey, MeasuredRow> measured_rows(const ordered_json& report, const std::string& path) {
  const std::string where = "compress report '" + path + "'";
  if (!report.contains("tensors") || !report["tensors"].is_array()) {
    throw UsageError(where + " has no \"tensors\" array");
  }
  std::map<RowKey, MeasuredRow> rows;
  std::map<std::pair<std::string, std::string>, int> seen;
  const ordered_json& tensors = report["tensors"];
  for (size_t i = 0; i < tensors.size(); ++i) {
    const ordered_json& row = tensors[i];
    if (!row.is_object() || !row.contains("pass") || !row["pass"].is_string() || !row.contains("tensor") ||
        !row["tensor"].is_string()) {
      throw UsageError(where + ": tensors[" + std::to_string(i) + "] needs string \"pass\" and \"tensor\"");
    }
    const std::string pass = row["pass"], tensor = row["tensor"];
    const int occurrence = seen[{pass, tensor}]++;
    auto take = [&](const char* metric, bool is_score) {
      if (!row.contains(metric)) return false;
      if (!row[metric].is_number()) {
        throw UsageError(where + ": tensors[" + std::to_string(i) + "]." + metric + " must be a number");
      }
      const double v = row[metric].get<double>();
      rows[{pass, tensor, occurrence}] = {metric, v, is_score ? 1.0 - v : v};
      return true;
    };
    bool found = false;
    for (const char* m : kErrorMetrics) found = found || take(m, false);
    for (const char* m : kScoreMetrics) found = found || take(m, true);
  }
  return rows;
}

}  // namespace

Blame blame_tensors(const ordered_json& baseline, const std::string& baseline_path, const ordered_json& current,
                    const std::string& current_path) {
  const auto before = measured_rows(baseline, baseline_path);
  const auto after = measured_rows(current, current_path);
  Blame b;
  b.baseline_path = baseline_path;
  b.current_path = current_path;
  for (const auto& [key, now] : after) {
    auto it = before.find(key);
    if (it == before.end() || it->second.metric != now.metric) {
      ++b.only_in_current;
      continue;
    }
    ++b.compared;
    const MeasuredRow& then = it->second;
    if (!(now.error > then.error)) continue;
    b.grown.push_back({std::get<0>(key), std::get<1>(key), now.metric, then.value, now.value, then.error, now.error});
  }
  b.only_in_baseline = before.size() - b.compared;
  // Relative growth is scale-free, so rel_err, kl and recall rows rank together; ties keep
  // the larger absolute growth first, then (pass, tensor) order.
  std::stable_sort(b.grown.begin(), b.grown.end(), [](const TensorErrorChange& x, const TensorErrorChange& y) {
    if (x.relative_growth() != y.relative_growth()) return x.relative_growth() > y.relative_growth();
    return (x.current_error - x.baseline_error) > (y.current_error - y.baseline_error);
  });
  return b;
}

namespace {

std::string growth_text(const TensorErrorChange& c) {
  const double g = c.relative_growth();
  if (std::isinf(g)) return "from 0";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%%", 100.0 * g);
  return buf;
}

}  // namespace

void print_blame(const Blame& blame, size_t top, std::FILE* out) {
  if (blame.grown.empty()) {
    std::fprintf(out, "blame: no tensor's measured error grew (%zu rows compared, %s vs baseline %s)\n",
                 blame.compared, blame.current_path.c_str(), blame.baseline_path.c_str());
    return;
  }
  std::fprintf(out, "blame: %zu of %zu tensors' measured error grew (%s vs baseline %s); largest first:\n",
               blame.grown.size(), blame.compared, blame.current_path.c_str(), blame.baseline_path.c_str());
  std::fprintf(out, "  %-12s %-36s %-8s %-12s %-12s %s\n", "pass", "tensor", "metric", "baseline", "current", "growth");
  for (size_t i = 0; i < std::min(top, blame.grown.size()); ++i) {
    const TensorErrorChange& c = blame.grown[i];
    std::fprintf(out, "  %-12s %-36s %-8s %-12.6g %-12.6g %s\n", c.pass.c_str(), c.tensor.c_str(), c.metric.c_str(),
                 c.baseline, c.current, growth_text(c).c_str());
  }
  if (blame.only_in_current + blame.only_in_baseline > 0) {
    std::fprintf(out, "  (%zu measured rows only in the current report, %zu only in the baseline's)\n",
                 blame.only_in_current, blame.only_in_baseline);
  }
}

ordered_json blame_json(const Blame& blame, size_t top) {
  ordered_json rows = ordered_json::array();
  for (size_t i = 0; i < std::min(top, blame.grown.size()); ++i) {
    const TensorErrorChange& c = blame.grown[i];
    const double g = c.relative_growth();
    rows.push_back({{"pass", c.pass},
                    {"tensor", c.tensor},
                    {"metric", c.metric},
                    {"baseline", c.baseline},
                    {"current", c.current},
                    {"relative_growth", std::isinf(g) ? ordered_json(nullptr) : ordered_json(g)}});
  }
  return {{"baseline_compress_report", blame.baseline_path},
          {"compress_report", blame.current_path},
          {"compared", blame.compared},
          {"grown", blame.grown.size()},
          {"tensors", std::move(rows)}};
}

}  // namespace rwkvlite::cli
