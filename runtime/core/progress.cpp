#include "runtime/core/progress.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace rwkvlite {

bool ProgressLine::enabled() {
  static const bool on = isatty(STDERR_FILENO) == 1 && std::getenv("RWKVLITE_NO_PROGRESS") == nullptr &&
                         spdlog::should_log(spdlog::level::info);  // off under --quiet
  return on;
}

ProgressLine::ProgressLine(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), enabled_(enabled()), start_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() { clear(); }

void ProgressLine::update(int64_t done, const std::string& detail) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool final_step = total_ > 0 && done >= total_;
  if (drawn_ && !final_step && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  char buf[256];
  if (total_ > 0) {
    constexpr int kWidth = 30;
    const double frac = std::clamp(static_cast<double>(done) / static_cast<double>(total_), 0.0, 1.0);
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(kWidth - filled), '.');
    std::snprintf(buf, sizeof buf, "%s [%s] %3.0f%% %.1fs %s", label_.c_str(), bar.c_str(), 100 * frac, elapsed,
                  detail.c_str());
  } else {
    std::snprintf(buf, sizeof buf, "%s: %lld %.1fs %s", label_.c_str(), static_cast<long long>(done), elapsed,
                  detail.c_str());
  }
  // \r and erase-to-end-of-line: redraw in place without scrolling.
  std::fprintf(stderr, "\r%s\x1b[K", buf);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressLine::clear() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(stderr, "\r\x1b[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace rwkvlite
