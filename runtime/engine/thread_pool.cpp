#include "engine/thread_pool.h"

#include <algorithm>

#include "core/error.h"

namespace rwkvlite {

ThreadPool::ThreadPool(int threads, int64_t min_work_per_part) : min_work_per_part_(std::max<int64_t>(1, min_work_per_part)) {
  if (threads < 1) throw UsageError("thread count must be at least 1, got " + std::to_string(threads));
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_part(int part) {
  // Part boundaries depend only on the range and the part count, never on timing.
  const int64_t n = end_ - begin_;
  const int64_t lo = begin_ + n * part / parts_;
  const int64_t hi = begin_ + n * (part + 1) / parts_;
  try {
    if (lo < hi) call_(ctx_, lo, hi);
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::run(int64_t begin, int64_t end, int64_t work_per_item, Call call, void* ctx) {
  const int64_t items = end - begin;
  const int64_t total_work = items * std::max<int64_t>(1, work_per_item);
  const int64_t by_work = std::max<int64_t>(1, total_work / min_work_per_part_);
  const int parts = static_cast<int>(std::min<int64_t>({static_cast<int64_t>(threads()), items, by_work}));

  if (parts <= 1) {
    // Too little work or a single thread: no synchronisation at all, the common case for
    // small matrices.
    call(ctx, begin, end);
    return;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  if (busy_) {
    // A nested call from inside a running part (or a concurrent one): run it serially.
    lock.unlock();
    call(ctx, begin, end);
    return;
  }
  busy_ = true;
  call_ = call;
  ctx_ = ctx;
  begin_ = begin;
  end_ = end;
  parts_ = parts;
  pending_ = parts - 1;  // the workers' parts; part 0 runs here
  error_ = nullptr;
  ++generation_;
  lock.unlock();
  start_cv_.notify_all();

  run_part(0);

  lock.lock();
  done_cv_.wait(lock, [this] { return pending_ == 0; });
  busy_ = false;
  std::exception_ptr error = error_;
  error_ = nullptr;
  lock.unlock();
  if (error) std::rethrow_exception(error);
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    start_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    if (index >= parts_) continue;  // this job has fewer parts than threads
    lock.unlock();
    run_part(index);
    lock.lock();
    if (--pending_ == 0) done_cv_.notify_one();
  }
}

}  // namespace rwkvlite
