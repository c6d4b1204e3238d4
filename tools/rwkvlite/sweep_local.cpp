// The local backend: worker processes on this machine, `jobs` at a time.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>

#include "runtime/core/error.h"
#include "runtime/core/progress.h"
#include "tools/rwkvlite/sweep_backend.h"
#include "tools/rwkvlite/sweep_run.h"

namespace rwkvlite::cli {
namespace {

volatile sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

// SIGINT/SIGTERM set a flag instead of killing the sweep, so it can stop its workers cleanly.
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

// fork + exec of one worker, its stdout and stderr appended to `log`. The child asks to be
// killed when the sweep dies (even by SIGKILL), so no orphan keeps writing into DIR.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw InputError("cannot write the run log '" + log + "': " + std::strerror(errno));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the sweep died before prctl took effect
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fd);
  if (pid < 0) throw Error(std::string("cannot start a sweep worker: ") + std::strerror(errno), kExitInternal);
  return pid;
}

std::string duration_text(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
}

std::string status_of_exit(int status) {
  if (WIFSIGNALED(status)) return "the worker was killed by signal " + std::to_string(WTERMSIG(status));
  return "the worker exited with code " + std::to_string(WEXITSTATUS(status)) + " without a result";
}

}  // namespace

std::vector<std::string> WorkerCommand::argv(const std::string& run_id) const {
  return {exe, "sweep", sweep_path, "-o", out_dir, "--run", run_id, "--threads", std::to_string(threads)};
}

void run_local(const SweepSpec& spec, const std::vector<size_t>& pending, const WorkerCommand& worker, int jobs) {
  InterruptGuard guard;
  std::deque<size_t> queue(pending.begin(), pending.end());
  std::map<pid_t, size_t> running;
  const auto t0 = std::chrono::steady_clock::now();
  size_t done = 0, failed = 0;
  ProgressLine progress("sweep", static_cast<int64_t>(pending.size()));

  while (!queue.empty() || !running.empty()) {
    while (!g_interrupted && !queue.empty() && static_cast<int>(running.size()) < jobs) {
      const SweepRun& run = spec.runs[queue.front()];
      std::filesystem::create_directories(run_paths(worker.out_dir, run.id).dir);
      running[spawn(worker.argv(run.id), run_paths(worker.out_dir, run.id).log)] = queue.front();
      queue.pop_front();
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) {
        if (g_interrupted) {
          for (const auto& [p, i] : running) ::kill(p, SIGTERM);
        }
        continue;
      }
      throw Error(std::string("waiting for sweep workers: ") + std::strerror(errno), kExitInternal);
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const SweepRun& run = spec.runs[it->second];
    running.erase(it);
    if (g_interrupted) continue;  // killed by us or by the same Ctrl-C: not a result
    std::optional<nlohmann::ordered_json> r = read_result(worker.out_dir, run);
    if (!r) {
      r = failed_result(run, status_of_exit(status) + " (log: " + run_paths(worker.out_dir, run.id).log + ")");
      write_result(worker.out_dir, run, *r);
    }
    ++done;
    const bool ok = r->value("status", "") == "ok";
    if (!ok) ++failed;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double left = elapsed / static_cast<double>(done) * static_cast<double>(pending.size() - done);
    progress.clear();
    const std::string what = run.baseline.empty() ? params_text(run) : "baseline " + run.baseline;
    if (ok) {
      spdlog::info("sweep: {}/{} runs done, {} failed, {} elapsed, ~{} left | {} ok: {} ({:.4f} bits/byte, {:+.2f}%)",
                   done, pending.size(), failed, duration_text(elapsed), duration_text(left), run.id, what,
                   (*r)["bits_per_byte"].get<double>(), (*r)["bpb_increase_pct"].get<double>());
    } else {
      spdlog::warn("sweep: {}/{} runs done, {} failed, {} elapsed, ~{} left | {} FAILED: {}: {}", done,
                   pending.size(), failed, duration_text(elapsed), duration_text(left), run.id, what,
                   r->value("error", ""));
    }
    progress.update(static_cast<int64_t>(done), std::to_string(failed) + " failed");
  }
  progress.clear();
  if (g_interrupted) throw InterruptedError();
}

}  // namespace rwkvlite::cli
