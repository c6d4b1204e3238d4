// Reusable temporary buffers for one evaluation, so that evaluating a token allocates nothing
// once the buffers have grown to their working size.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace rwkvlite {

class Scratch {
 public:
  // A buffer of at least n floats (contents unspecified), valid until the enclosing Frame ends.
  // Buffers never move: each one is a separate allocation, reused by later evaluations.
  float* take(size_t n) {
    if (next_ == buffers_.size()) buffers_.push_back(std::make_unique<std::vector<float>>());
    std::vector<float>& b = *buffers_[next_++];
    if (b.size() < n) b.resize(n);
    return b.data();
  }

  // Returns every buffer taken during its lifetime when it ends.
  class Frame {
   public:
    explicit Frame(Scratch& s) : scratch_(s), mark_(s.next_) {}
    ~Frame() { scratch_.next_ = mark_; }
    Frame(const Frame&) = delete;
    Frame& operator=(const Frame&) = delete;

   private:
    Scratch& scratch_;
    size_t mark_;
  };

 private:
  std::vector<std::unique_ptr<std::vector<float>>> buffers_;
  size_t next_ = 0;
};

}  // namespace rwkvlite
