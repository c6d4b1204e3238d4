// The Slurm backend: one job array, one task per pending run, submitted with sbatch.
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstring>
#include <filesystem>

#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "tools/rwkvlite/sweep_backend.h"
#include "tools/rwkvlite/sweep_run.h"

namespace rwkvlite::cli {
namespace {

namespace fs = std::filesystem;

// Single-quoted for bash.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Captured {
  int exit_code = -1;
  std::string out;
};

// Runs argv[0] (found on PATH) and captures its stdout; stderr passes through.
Captured capture(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe(fds) != 0) throw Error(std::string("pipe: ") + std::strerror(errno), kExitInternal);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  if (pid < 0) throw Error(std::string("fork: ") + std::strerror(errno), kExitInternal);
  Captured c;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) c.out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return c;
}

std::string array_script(const SweepSpec& spec, const std::vector<size_t>& pending, const WorkerCommand& worker) {
  std::string s = "#!/bin/bash\n# rwkvlite sweep " + worker.sweep_path + ": one task per run (written by rwkvlite)\n";
  s += "#SBATCH --job-name=rwkvlite-sweep\n";
  s += "#SBATCH --output=" + worker.out_dir + "/logs/%A_%a.log\n";
  s += "#SBATCH --cpus-per-task=" + std::to_string(worker.threads) + "\n";
  s += "set -euo pipefail\nruns=(";
  for (size_t i : pending) s += " " + spec.runs[i].id;
  s += " )\nexec";
  for (const std::string& a : worker.argv("RUN_ID")) {
    s += ' ';
    s += a == "RUN_ID" ? std::string("\"${runs[$SLURM_ARRAY_TASK_ID]}\"") : shell_quote(a);
  }
  return s + "\n";
}

}  // namespace

void run_slurm(const SweepSpec& spec, const std::vector<size_t>& pending, const WorkerCommand& worker, int jobs,
               const SlurmOptions& options) {
  if (pending.empty()) return;
  const std::string slurm_dir = worker.out_dir + "/slurm";
  fs::create_directories(slurm_dir);
  fs::create_directories(worker.out_dir + "/logs");
  for (size_t i : pending) fs::create_directories(run_paths(worker.out_dir, spec.runs[i].id).dir);
  const std::string script_path = slurm_dir + "/array.sh";
  write_file_atomically(script_path, array_script(spec, pending, worker));
  // Built with += only: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string temporaries.
  std::string range = "0-";
  range += std::to_string(pending.size() - 1);
  if (jobs > 0) {
    range += '%';
    range += std::to_string(jobs);
  }
  std::vector<std::string> args = {"sbatch", "--parsable", "--array=" + range};
  if (options.wait) args.push_back("--wait");
  for (const std::string& a : options.sbatch_args) args.push_back(a);
  args.push_back(script_path);

  spdlog::info("slurm: submitting {} runs as a job array ({}){}", pending.size(), script_path,
               options.wait ? ", waiting for it to finish" : "");
  const Captured c = capture(args);
  if (c.exit_code == 127) throw UsageError("--backend slurm: cannot run sbatch (is Slurm installed and on PATH?)");
  const std::string job = c.out.substr(0, c.out.find_first_of(";\n"));
  if (job.empty()) throw InputError("sbatch submitted nothing (exit code " + std::to_string(c.exit_code) + ")");
  if (!options.wait) {
    spdlog::info("slurm: job array {} submitted; logs in {}/logs/; rerun with --collect when it is done", job,
                 worker.out_dir);
    return;
  }
  spdlog::info("slurm: job array {} finished (sbatch exit code {})", job, c.exit_code);
  for (size_t t = 0; t < pending.size(); ++t) {
    const SweepRun& run = spec.runs[pending[t]];
    if (read_result(worker.out_dir, run)) continue;
    const std::string log = worker.out_dir + "/logs/" + job + "_" + std::to_string(t) + ".log";
    write_result(worker.out_dir, run, failed_result(run, "the Slurm task wrote no result (log: " + log + ")"));
  }
}

}  // namespace rwkvlite::cli
