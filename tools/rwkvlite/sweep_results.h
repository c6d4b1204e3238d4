// What a sweep reports: DIR/results.csv (one row per run, in the sweep file's order) and
// DIR/summary.json (counts, failures, and per model the dense baseline and the Pareto front of
// peak resident weight bytes against bits per byte). Apart from the timing columns
// (tokens_per_second, compress_seconds, eval_seconds) and calibration_cache (which run of a
// model found the cache filled depends on scheduling), both are identical when the same sweep
// is run again from scratch.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "tools/rwkvlite/sweep_spec.h"

namespace rwkvlite::cli {

struct SweepOutcome {
  int ok = 0, failed = 0, missing = 0;
  bool all_ok() const { return failed == 0 && missing == 0; }
};

// `results[i]` is run i's result.json, or nullopt when the run has none (not run yet).
// Writes both files atomically and prints one line per run on stdout.
SweepOutcome write_sweep_results(const SweepSpec& spec, const std::string& out_dir,
                                 const std::vector<std::optional<nlohmann::ordered_json>>& results);

// Indices of the runs on the Pareto front (no other run of the same model has both fewer
// peak resident bytes and fewer bits per byte), sorted by resident bytes.
std::vector<size_t> pareto_front(const std::vector<const nlohmann::ordered_json*>& rows);

}  // namespace rwkvlite::cli
