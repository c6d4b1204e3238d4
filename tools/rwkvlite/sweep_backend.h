// Where a sweep's runs execute. Both backends start the same worker for each run,
//   rwkvlite sweep SWEEP.toml -o DIR --run ID --threads T
// which does the run in its own process (execute_run in sweep_run.h) and writes its
// result.json; the sweep then collects those files the same way whichever backend ran them.
#pragma once

#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "tools/rwkvlite/sweep_spec.h"

namespace rwkvlite::cli {

struct WorkerCommand {
  std::string exe;         // absolute path of this rwkvlite executable
  std::string sweep_path;  // absolute
  std::string out_dir;     // absolute
  int threads = 1;         // per run
  std::vector<std::string> argv(const std::string& run_id) const;
};

// Runs `pending` (indices into spec.runs) as local worker processes, `jobs` at a time, each
// logging to its run folder's log.txt, with a progress line (runs done / total, failures,
// elapsed, estimate). A worker that dies without a result gets a failed one. On Ctrl-C or
// SIGTERM the workers are stopped, nothing is recorded for them, and InterruptedError is thrown.
void run_local(const SweepSpec& spec, const std::vector<size_t>& pending, const WorkerCommand& worker, int jobs);

struct SlurmOptions {
  bool wait = true;                     // block until the job array has finished
  std::vector<std::string> sbatch_args; // passed to sbatch as given (--partition=..., --time=...)
};

// Submits `pending` as one job array (sbatch --array=0-N%jobs), per-task logs in
// DIR/logs/<job>_<task>.log. With `wait`, returns when the array is done and records a failed
// result for every task that wrote none; without, returns at once after printing the job id.
void run_slurm(const SweepSpec& spec, const std::vector<size_t>& pending, const WorkerCommand& worker, int jobs,
               const SlurmOptions& options);

// Exit code 130, as a shell reports a Ctrl-C.
class InterruptedError : public Error {
 public:
  InterruptedError() : Error("interrupted: the finished runs are kept; rerun the same command to resume", 130) {}
};

}  // namespace rwkvlite::cli
