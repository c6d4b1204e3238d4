#include "tools/rwkvlite/check_thresholds.h"

#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include "compress/pipeline/option_reader.h"
#include "compress/pipeline/toml_limits.h"
#include "runtime/core/error.h"

namespace rwkvlite::cli {

const std::vector<GatedMetric>& gated_metrics() {
  static const std::vector<GatedMetric> kMetrics = {
      {"bits_per_byte", "bpb", true, false},
      {"top1_agreement", "top1-agreement", false, false},
      {"kl_mean", "kl", true, false},
      {"peak_resident_weight_bytes", "resident-bytes", true, true},
      {"file_bytes", "file-bytes", true, true},
  };
  return kMetrics;
}

const char* bound_key(const GatedMetric& m) { return m.lower_is_better ? "max" : "min"; }
const char* relative_key(const GatedMetric& m) { return m.lower_is_better ? "max_increase_pct" : "max_decrease"; }

bool Thresholds::any() const {
  for (const MetricLimits& l : limits) {
    if (l.any()) return true;
  }
  return false;
}

namespace {

// A limit value: every gated metric is a non-negative quantity, and so is every allowed change.
Limit read_limit(OptionReader& r, const char* key) {
  const std::optional<double> v = r.get_optional<double>(key);
  if (!v) return {};
  if (!(std::isfinite(*v) && *v >= 0)) {
    r.fail(key, "'" + std::string(key) + "' in " + r.where() + " must be a finite number >= 0");
  }
  return {v, r.location(key)};
}

}  // namespace

Thresholds load_thresholds(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read thresholds file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  check_toml_limits(text.str(), path);
  toml::table root;
  try {
    root = toml::parse(text.str(), path);
  } catch (const toml::parse_error& e) {
    throw UsageError(path + position_suffix(e.source()) + ": invalid TOML: " + std::string(e.description()));
  }
  auto sources = std::make_shared<ConfigSources>();
  sources->file = path;
  OptionReader top(root, kTopLevel, sources);
  Thresholds t;
  for (size_t i = 0; i < gated_metrics().size(); ++i) {
    const GatedMetric& m = gated_metrics()[i];
    std::optional<OptionReader> table = top.get_table(m.key, std::string("[") + m.key + "]");
    if (!table) continue;
    t.limits[i].bound = read_limit(*table, bound_key(m));
    t.limits[i].relative = read_limit(*table, relative_key(m));
    table->finish();
  }
  top.finish();
  return t;
}

void ThresholdFlags::add_to(CLI::App& cmd) {
  for (size_t i = 0; i < gated_metrics().size(); ++i) {
    const GatedMetric& m = gated_metrics()[i];
    const std::string stem = m.flag_stem;
    if (m.lower_is_better) {
      cmd.add_option_function<double>("--max-" + stem, [this, i](const double& v) { bound[i] = v; },
                                      std::string("Largest allowed ") + m.key)
          ->check(CLI::NonNegativeNumber);
      cmd.add_option_function<double>("--max-" + stem + "-increase", [this, i](const double& v) { relative[i] = v; },
                                      std::string("Largest allowed increase of ") + m.key + ", in percent of the baseline")
          ->check(CLI::NonNegativeNumber);
    } else {
      cmd.add_option_function<double>("--min-" + stem, [this, i](const double& v) { bound[i] = v; },
                                      std::string("Smallest allowed ") + m.key)
          ->check(CLI::NonNegativeNumber);
      cmd.add_option_function<double>("--max-" + stem + "-decrease", [this, i](const double& v) { relative[i] = v; },
                                      std::string("Largest allowed absolute drop of ") + m.key + " below the baseline")
          ->check(CLI::NonNegativeNumber);
    }
  }
}

Thresholds ThresholdFlags::apply(Thresholds base) const {
  for (size_t i = 0; i < gated_metrics().size(); ++i) {
    const GatedMetric& m = gated_metrics()[i];
    MetricLimits& l = base.limits[i];
    const std::string stem = m.flag_stem;
    if (bound[i]) l.bound = {bound[i], (m.lower_is_better ? "--max-" : "--min-") + stem};
    if (relative[i]) l.relative = {relative[i], "--max-" + stem + (m.lower_is_better ? "-increase" : "-decrease")};
  }
  return base;
}

}  // namespace rwkvlite::cli
