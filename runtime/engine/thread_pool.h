// A small fixed-size thread pool for splitting independent work items (matrix rows, heads)
// across threads.
//
// Determinism is the point of the design: parallel_for only ever hands each item to exactly one
// thread, and callers compute each item with code that does not depend on which thread runs it
// or on how the range was split. Results are therefore bit-identical for any thread count.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace rwkvlite {

class ThreadPool {
 public:
  // Below this many multiply-adds per part, waking another thread costs more than it saves
  // (a wake-up and join is a few microseconds; 32K multiply-adds take about as long).
  static constexpr int64_t kDefaultMinWorkPerPart = 32768;
  // How long an idle thread spins before it sleeps (thread_pool.cpp says why): after a longer
  // pause, the next job first waits for the workers to wake up.
  static constexpr double kSpinSeconds = 200e-6;

  // `threads` >= 1 threads in total: threads - 1 workers plus the calling thread, which always
  // takes part. `min_work_per_part` is the smallest amount of work (in the caller's units,
  // normally multiply-adds) worth giving a thread of its own; 1 splits whenever possible.
  explicit ThreadPool(int threads, int64_t min_work_per_part = kDefaultMinWorkPerPart);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  int64_t min_work_per_part() const { return min_work_per_part_; }

  // Calls fn(lo, hi) on contiguous sub-ranges that together cover [begin, end) exactly once,
  // concurrently, and returns when all are done. Each item costs about `work_per_item`; the
  // range is split into chunks of at least min_work_per_part() work each (a few per thread),
  // which the calling thread and the workers claim dynamically, so a worker that is slow to
  // wake (on a busy machine) delays nothing: the others take its chunks.
  // The first exception thrown by fn is rethrown here after every part has finished.
  // A call made from inside fn (nested parallelism) runs serially on the calling thread.
  template <typename Fn>
  void parallel_for(int64_t begin, int64_t end, int64_t work_per_item, Fn&& fn) {
    if (end <= begin) return;
    auto call = [](void* ctx, int64_t lo, int64_t hi) { (*static_cast<Fn*>(ctx))(lo, hi); };
    run(begin, end, work_per_item, call, static_cast<void*>(&fn));
  }

 private:
  using Call = void (*)(void*, int64_t, int64_t);
  void run(int64_t begin, int64_t end, int64_t work_per_item, Call call, void* ctx);
  void worker_loop();
  // Claims and runs chunks of job `generation` until none are left. Returns at once if that job
  // is over, so a worker that wakes late can never run a chunk of a later job.
  void run_chunks(uint32_t generation, Call call, void* ctx, int64_t begin, int64_t end, int chunks);

  std::vector<std::thread> workers_;
  int64_t min_work_per_part_;

  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  bool stopping_ = false;
  bool busy_ = false;  // a job is running (nested or concurrent calls run serially)

  // The current job (guarded by mutex_ for the workers' first read).
  uint32_t generation_ = 0;
  // generation_ as an atomic, for workers spinning without the mutex (thread_pool.cpp).
  std::atomic<uint32_t> published_generation_{0};
  Call call_ = nullptr;
  void* ctx_ = nullptr;
  int64_t begin_ = 0, end_ = 0;
  int chunks_ = 0;
  // Job generation (high 32 bits) and next unclaimed chunk (low 32 bits), claimed by CAS so
  // that a claim can only succeed for the job it was meant for.
  std::atomic<uint64_t> next_chunk_{0};
  std::atomic<int> chunks_done_{0};
  std::exception_ptr error_;
};

}  // namespace rwkvlite
