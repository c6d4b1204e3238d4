// rwkvlite sweep SWEEP.toml [-o DIR] [--jobs N] [--force] [--backend local|slurm] [--collect]:
// expands a sweep file into runs (sweep_spec.h), does the unfinished ones on this machine or as
// a Slurm job array (sweep_backend.h), and writes DIR/results.csv and DIR/summary.json
// (sweep_results.h). Exit 0 when every run succeeded, 6 when some failed or are not done yet.
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <filesystem>
#include <thread>

#include "compress/passes/builtin_passes.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "tools/common/json_output.h"
#include "tools/rwkvlite/commands.h"
#include "tools/rwkvlite/sweep_backend.h"
#include "tools/rwkvlite/sweep_results.h"
#include "tools/rwkvlite/sweep_run.h"

namespace rwkvlite::cli {
namespace {

namespace fs = std::filesystem;

struct SweepCommand {
  std::string sweep_path, out_dir, backend = "local", run_id;
  int jobs = 1, threads = 0;
  bool force = false, retry_failed = false, collect = false, no_wait = false, list = false, jobs_given = false;
  std::vector<std::string> sbatch_args;
};

std::string self_executable() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find this executable's path (/proc/self/exe): " + ec.message(), kExitInternal);
  return p.string();
}

std::vector<std::optional<nlohmann::ordered_json>> read_results(const SweepSpec& spec, const std::string& dir) {
  std::vector<std::optional<nlohmann::ordered_json>> out;
  for (const SweepRun& run : spec.runs) out.push_back(read_result(dir, run));
  return out;
}

// The expanded sweep, for the record and for tools: every run's id, model and settings.
void write_plan(const SweepSpec& spec, const std::string& dir) {
  nlohmann::ordered_json runs = nlohmann::ordered_json::array();
  for (const SweepRun& r : spec.runs) {
    runs.push_back({{"run_id", r.id}, {"model", r.model}, {"model_xxh64", r.model_xxh64}, {"baseline", r.baseline},
                    {"config", r.config_path}, {"params", params_text(r)}, {"origin", r.origin}});
  }
  tools::write_json(dir + "/sweep.json", {{"sweep", spec.path}, {"runs", runs}});
}

int run_sweep(const SweepCommand& c) {
  const PassRegistry passes = builtin_passes();
  const SweepSpec spec = load_sweep(c.sweep_path, passes);
  const std::string dir =
      fs::absolute(c.out_dir.empty() ? "sweeps/" + fs::path(c.sweep_path).stem().string() : c.out_dir)
          .lexically_normal()
          .string();
  const int threads = c.threads > 0 ? c.threads
                                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / std::max(1, c.jobs));

  if (!c.run_id.empty()) {  // one worker
    for (const SweepRun& run : spec.runs) {
      if (run.id == c.run_id) {
        spdlog::info("sweep run {}: {} {}", run.id, run.model, run.baseline.empty() ? params_text(run) : run.baseline);
        execute_run(spec, run, dir, threads, passes);
        return 0;  // a failure is recorded in result.json, which the sweep reads
      }
    }
    throw UsageError("--run " + c.run_id + ": no such run in " + c.sweep_path + " (the sweep file changed?)");
  }

  if (c.list) {
    for (const SweepRun& r : spec.runs) {
      std::printf("%s  %s  %s\n", r.id.c_str(), r.model.c_str(),
                  (r.baseline.empty() ? params_text(r) : "[" + r.baseline + "]").c_str());
    }
    return 0;
  }
  fs::create_directories(dir);
  spdlog::info("sweep {}: {} runs over {} settings, results in {}", c.sweep_path, spec.runs.size(),
               spec.swept_keys.size(), dir);
  if (!c.collect) {
    for (const SweepRun& run : spec.runs) prepare_run(run, dir, passes);
    write_plan(spec, dir);
    std::vector<size_t> pending;
    size_t finished = 0, failed_kept = 0;
    for (size_t i = 0; i < spec.runs.size(); ++i) {
      const auto r = read_result(dir, spec.runs[i]);
      const bool redo = !r || c.force || (c.retry_failed && r->value("status", "") != "ok");
      if (redo) {
        std::error_code ec;
        fs::remove(run_paths(dir, spec.runs[i].id).result, ec);
        pending.push_back(i);
      } else {
        ++finished;
        if (r->value("status", "") != "ok") ++failed_kept;
      }
    }
    spdlog::info("sweep: {} runs finished before ({} of them failed; --retry-failed redoes those), {} to run",
                 finished, failed_kept, pending.size());
    WorkerCommand worker{self_executable(), fs::absolute(c.sweep_path).lexically_normal().string(), dir, threads};
    if (c.backend == "slurm") {
      run_slurm(spec, pending, worker, c.jobs_given ? c.jobs : 0, SlurmOptions{!c.no_wait, c.sbatch_args});
      if (c.no_wait) return 0;
    } else {
      run_local(spec, pending, worker, c.jobs);
    }
  }
  const SweepOutcome outcome = write_sweep_results(spec, dir, read_results(spec, dir));
  spdlog::info("sweep: {} ok, {} failed, {} not run; {}/results.csv, {}/summary.json", outcome.ok, outcome.failed,
               outcome.missing, dir, dir);
  return outcome.all_ok() ? kExitOk : kExitPartialFailure;
}

}  // namespace

void register_sweep(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("sweep", "Compress and evaluate every setting of a sweep file; results.csv and plots");
  auto c = std::make_shared<SweepCommand>();
  cmd->add_option("sweep", c->sweep_path, "Sweep file (see configs/sweeps/ and docs/sweeps.md)")->required();
  cmd->add_option("-o,--output-dir", c->out_dir, "Results folder (default: sweeps/<sweep file name>)");
  auto* jobs = cmd->add_option("-j,--jobs", c->jobs, "Runs at a time (local default 1; Slurm default: no limit)")
                   ->check(CLI::Range(1, 1024));
  cmd->add_option("--threads", c->threads, "Threads per run (default: cores / jobs)")->check(CLI::Range(1, 256));
  cmd->add_flag("--force", c->force, "Redo every run, finished or not");
  cmd->add_flag("--retry-failed", c->retry_failed, "Redo the runs that failed before (finished ones are kept)");
  cmd->add_option("--backend", c->backend, "Where runs execute")->check(CLI::IsMember({"local", "slurm"}));
  cmd->add_flag("--no-wait", c->no_wait, "Slurm: submit the job array and return at once (then use --collect)");
  cmd->add_option("--sbatch-arg", c->sbatch_args, "Slurm: an extra sbatch option, e.g. --sbatch-arg=--partition=gpu")
      ->allow_extra_args(false);
  cmd->add_flag("--collect", c->collect, "Only gather the finished runs' results into results.csv and summary.json");
  cmd->add_flag("--list", c->list, "Print the runs the sweep file expands to (id, model, settings) and exit");
  cmd->add_option("--run", c->run_id, "Internal: do one run (what each worker process executes)")->group("");
  cmd->callback([&action, c, jobs] {
    c->jobs_given = jobs->count() > 0;
    action = [c] { return run_sweep(*c); };
  });
}

}  // namespace rwkvlite::cli
