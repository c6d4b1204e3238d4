// Accounting of every weight byte the runtime holds, so peak resident weight bytes is a
// measured output rather than an estimate. Each holder of weight memory registers its bytes
// for as long as it holds them (ResidentBytes is RAII).
//
// Counters can form a two-level tree: a per-part counter (ffn, head, embedding, other) made
// with the total as its parent also adds every byte to the total, so the total's peak is the
// true peak of the sum, not the sum of the parts' peaks (which may occur at different times).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace rwkvlite {

class ResidencyCounter {
 public:
  ResidencyCounter() = default;
  explicit ResidencyCounter(std::shared_ptr<ResidencyCounter> parent) : parent_(std::move(parent)) {}

  void add(int64_t bytes) {
    const int64_t now = current_.fetch_add(bytes) + bytes;
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    if (parent_) parent_->add(bytes);
  }
  void sub(int64_t bytes) {
    current_.fetch_sub(bytes);
    if (parent_) parent_->sub(bytes);
  }
  int64_t current() const { return current_.load(); }
  int64_t peak() const { return peak_.load(); }

 private:
  std::atomic<int64_t> current_{0}, peak_{0};
  std::shared_ptr<ResidencyCounter> parent_;
};

// Registers `bytes` with a counter for its own lifetime.
class ResidentBytes {
 public:
  ResidentBytes() = default;
  ResidentBytes(std::shared_ptr<ResidencyCounter> counter, int64_t bytes) : counter_(std::move(counter)), bytes_(bytes) {
    if (counter_) counter_->add(bytes_);
  }
  ResidentBytes(ResidentBytes&& o) noexcept : counter_(std::move(o.counter_)), bytes_(o.bytes_) { o.bytes_ = 0; }
  ResidentBytes& operator=(ResidentBytes&& o) noexcept {
    if (this != &o) {
      release();
      counter_ = std::move(o.counter_);
      bytes_ = o.bytes_;
      o.bytes_ = 0;
    }
    return *this;
  }
  ~ResidentBytes() { release(); }
  int64_t bytes() const { return bytes_; }

 private:
  void release() {
    if (counter_ && bytes_) counter_->sub(bytes_);
    bytes_ = 0;
  }
  std::shared_ptr<ResidencyCounter> counter_;
  int64_t bytes_ = 0;
};

}  // namespace rwkvlite
