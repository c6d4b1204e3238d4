// The blame of `rwkvlite check`: when a gate fails, which tensors' measured compression error
// grew most between the baseline's and the current run's compress reports (the JSON that
// `rwkvlite compress` writes to OUTPUT.report.json, one "tensors" row per tensor and pass, the
// metric under its own name). Errors compared: rel_err and kl as they are, recall as
// 1 - recall (recall is higher-better). Rows are matched by (pass, tensor, occurrence).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace rwkvlite::cli {

struct TensorErrorChange {
  std::string pass, tensor, metric;
  double baseline = 0, current = 0;  // the metric as reported
  double baseline_error = 0, current_error = 0;  // as an error (1 - recall for recall)
  // (current - baseline) / baseline error; +inf when the baseline error was 0.
  double relative_growth() const;
};

struct Blame {
  std::string baseline_path, current_path;
  std::vector<TensorErrorChange> grown;  // errors that grew, largest relative growth first
  size_t compared = 0;                   // rows with a metric in both reports
  size_t only_in_current = 0, only_in_baseline = 0;
};

// UsageError (exit 2) when a report has no "tensors" array or a row lacks its pass or tensor
// name, or its metric is not a number.
Blame blame_tensors(const nlohmann::ordered_json& baseline, const std::string& baseline_path,
                    const nlohmann::ordered_json& current, const std::string& current_path);

// The `top` largest growths as a table (or one line saying that none grew).
void print_blame(const Blame& blame, size_t top, std::FILE* out);
nlohmann::ordered_json blame_json(const Blame& blame, size_t top);

}  // namespace rwkvlite::cli
