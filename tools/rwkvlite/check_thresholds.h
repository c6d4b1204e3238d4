// The limits of `rwkvlite check`: which report metrics can be gated, in which direction each is
// better, and the limits on each, read from a thresholds TOML file (one table per metric,
// configs/regression/*.toml) and from command-line flags, which override the file.
//
//   [bits_per_byte]                 # lower is better: max, max_increase_pct
//   max_increase_pct = 0.5          #   current <= baseline * (1 + 0.5 / 100)
//   max = 2.5                       #   current <= 2.5
//   [top1_agreement]                # higher is better: min, max_decrease
//   max_decrease = 0.005            #   current >= baseline - 0.005
//   min = 0.9                       #   current >= 0.9
//
// Gated metrics: bits_per_byte, top1_agreement, kl_mean, peak_resident_weight_bytes,
// file_bytes. Unknown tables or keys, wrong types and negative percentages are UsageErrors
// located at file:line:column, with a "did you mean" (compress/pipeline/option_reader.h).
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace rwkvlite::cli {

// A report metric that can be gated.
struct GatedMetric {
  const char* key;        // the report key and the TOML table name
  const char* flag_stem;  // --max-<stem>, --max-<stem>-increase / --min-<stem>, --max-<stem>-decrease
  bool lower_is_better;   // bits, KL and bytes: lower; top-1 agreement: higher
  bool is_byte_count;     // printed as an integer
};

// Every gated metric, in table order.
const std::vector<GatedMetric>& gated_metrics();

// The limits on one metric; unset ones do not apply. A lower-is-better metric takes `bound`
// as a maximum and `relative` as the largest increase in percent of the baseline; a
// higher-is-better one takes `bound` as a minimum and `relative` as the largest absolute drop.
struct Limit {
  std::optional<double> value;
  std::string source;  // where it was set, for messages: "FILE:line:column" or the flag ("--max-bpb")
};
struct MetricLimits {
  Limit bound;     // TOML max (lower is better) or min (higher is better)
  Limit relative;  // TOML max_increase_pct, or max_decrease

  bool any() const { return bound.value || relative.value; }
};

struct Thresholds {
  std::vector<MetricLimits> limits = std::vector<MetricLimits>(gated_metrics().size());  // by gated_metrics() index
  bool any() const;
};

// The TOML key names of a metric's two limits: {"max", "max_increase_pct"} or {"min", "max_decrease"}.
const char* bound_key(const GatedMetric& m);
const char* relative_key(const GatedMetric& m);

// Reads a thresholds file; UsageError (exit 2) when missing, not TOML, or not as documented above.
Thresholds load_thresholds(const std::string& path);

// The command-line limits: one pair of flags per metric, each overriding the file's value.
struct ThresholdFlags {
  std::vector<std::optional<double>> bound = std::vector<std::optional<double>>(gated_metrics().size());
  std::vector<std::optional<double>> relative = std::vector<std::optional<double>>(gated_metrics().size());

  void add_to(CLI::App& cmd);
  // `base` (from the file, or empty) with every given flag applied.
  Thresholds apply(Thresholds base) const;
};

}  // namespace rwkvlite::cli
