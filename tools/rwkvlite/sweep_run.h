// One run of a sweep: its folder, its saved config, and the work itself (compress with the
// shared calibration cache, then score the result with the bundled runtime against the dense
// model). A run is finished when its result.json exists; that file is written last and
// atomically, so a run killed at any point is simply not finished.
//
//   DIR/runs/<id>/config.toml          the resolved config the run compressed with
//   DIR/runs/<id>/model.rwkvlite       the compact file, and model.rwkvlite.report.json
//   DIR/runs/<id>/eval.json            the runtime report (tools/common/text_eval.h)
//   DIR/runs/<id>/log.txt              the run's log (local backend; Slurm: DIR/logs/)
//   DIR/runs/<id>/result.json          the row of results.csv, with status and error
//   DIR/calibration-cache/             statistics shared by every run of a model
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "compress/pipeline/pass_registry.h"
#include "tools/rwkvlite/sweep_spec.h"

namespace rwkvlite::cli {

struct RunPaths {
  std::string dir, config, model, compress_report, eval_report, log, result;
};
RunPaths run_paths(const std::string& out_dir, const std::string& run_id);
std::string calibration_cache_dir(const std::string& out_dir);

// Writes the run's folder and config.toml (the resolved config as TOML, read back and checked
// to resolve to the same JSON). Idempotent.
void prepare_run(const SweepRun& run, const std::string& out_dir, const PassRegistry& passes);

// Does the run and writes result.json; returns it. Failures are caught and recorded in the
// result (status "failed", error), never thrown.
nlohmann::ordered_json execute_run(const SweepSpec& spec, const SweepRun& run, const std::string& out_dir,
                                   int threads, const PassRegistry& passes);

// result.json of a finished run, if there is a readable one for this id.
std::optional<nlohmann::ordered_json> read_result(const std::string& out_dir, const SweepRun& run);

// The result of a run whose worker died without writing one (crash, killed by the scheduler).
nlohmann::ordered_json failed_result(const SweepRun& run, const std::string& error);
void write_result(const std::string& out_dir, const SweepRun& run, const nlohmann::ordered_json& result);

}  // namespace rwkvlite::cli
