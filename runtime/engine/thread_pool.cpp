#include "runtime/engine/thread_pool.h"

#include <algorithm>
#include <chrono>

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

// Chunks per thread: enough to balance uneven progress, few enough to keep claims cheap.
constexpr int64_t kChunksPerThread = 4;

// How long a thread spins, watching an atomic, before it sleeps on a condition variable. A
// token's forward pass is a few hundred parallel_for calls separated by microseconds of serial
// work; a futex sleep and wake-up costs tens of microseconds of scheduling latency each time,
// which at this size dominates. Spinning briefly catches the next job (and the end of the
// current one) without any system call; beyond the budget the thread sleeps, so an idle pool
// costs nothing.
constexpr auto kSpinBudget = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
    std::chrono::duration<double>(ThreadPool::kSpinSeconds));

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until pred() holds or the budget is spent; returns pred().
template <typename Pred>
bool spin_until(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinBudget;
  for (int i = 0;; ++i) {
    if (pred()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return pred();
  }
}

constexpr uint64_t pack(uint32_t generation, uint32_t chunk) { return static_cast<uint64_t>(generation) << 32 | chunk; }

}  // namespace

ThreadPool::ThreadPool(int threads, int64_t min_work_per_part) : min_work_per_part_(std::max<int64_t>(1, min_work_per_part)) {
  if (threads < 1) throw UsageError("thread count must be at least 1, got " + std::to_string(threads));
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(uint32_t generation, Call call, void* ctx, int64_t begin, int64_t end, int chunks) {
  const int64_t n = end - begin;
  for (;;) {
    uint64_t cur = next_chunk_.load(std::memory_order_acquire);
    uint32_t chunk;
    do {
      if (static_cast<uint32_t>(cur >> 32) != generation) return;  // that job is over
      chunk = static_cast<uint32_t>(cur);
      if (chunk >= static_cast<uint32_t>(chunks)) return;  // nothing left to claim
    } while (!next_chunk_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel));

    // Chunk boundaries depend only on the range and the chunk count, never on timing.
    const int64_t lo = begin + n * chunk / chunks;
    const int64_t hi = begin + n * (chunk + 1) / chunks;
    try {
      if (lo < hi) call(ctx, lo, hi);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    if (chunks_done_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) {
      std::lock_guard<std::mutex> lock(mutex_);  // pairs with the caller's wait
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::run(int64_t begin, int64_t end, int64_t work_per_item, Call call, void* ctx) {
  const int64_t items = end - begin;
  const int64_t total_work = items * std::max<int64_t>(1, work_per_item);
  const int64_t by_work = std::max<int64_t>(1, total_work / min_work_per_part_);
  const int64_t chunks = std::min<int64_t>({threads() * kChunksPerThread, items, by_work});
  if (chunks <= 1 || threads() == 1) {
    // Too little work or a single thread: no synchronisation at all, the common case for
    // small matrices.
    call(ctx, begin, end);
    return;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  if (busy_) {
    // A nested call from inside a running chunk (or a concurrent one): run it serially.
    lock.unlock();
    call(ctx, begin, end);
    return;
  }
  busy_ = true;
  const uint32_t generation = ++generation_;
  call_ = call;
  ctx_ = ctx;
  begin_ = begin;
  end_ = end;
  chunks_ = static_cast<int>(chunks);
  error_ = nullptr;
  chunks_done_.store(0, std::memory_order_relaxed);
  next_chunk_.store(pack(generation, 0), std::memory_order_release);
  published_generation_.store(generation, std::memory_order_release);
  lock.unlock();
  start_cv_.notify_all();  // no system call when every worker is spinning rather than asleep

  run_chunks(generation, call, ctx, begin, end, static_cast<int>(chunks));

  spin_until([&] { return chunks_done_.load(std::memory_order_acquire) == chunks; });
  lock.lock();
  done_cv_.wait(lock, [&] { return chunks_done_.load(std::memory_order_acquire) == chunks; });
  busy_ = false;
  std::exception_ptr error = error_;
  error_ = nullptr;
  lock.unlock();
  if (error) std::rethrow_exception(error);
}

void ThreadPool::worker_loop() {
  uint32_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (!stopping_ && generation_ == seen) {
      lock.unlock();
      spin_until([&] { return published_generation_.load(std::memory_order_acquire) != seen; });
      lock.lock();
    }
    start_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    const Call call = call_;
    void* const ctx = ctx_;
    const int64_t begin = begin_, end = end_;
    const int chunks = chunks_;
    lock.unlock();
    run_chunks(seen, call, ctx, begin, end, chunks);
    lock.lock();
  }
}

}  // namespace rwkvlite
