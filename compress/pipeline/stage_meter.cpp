#include "compress/pipeline/stage_meter.h"

#include <algorithm>
#include <utility>

#include "runtime/core/resource_usage.h"

namespace rwkvlite {

StageMeter::StageMeter(std::string first_stage) {
  // Resetting lowers the process figure too, so what came before the meter is kept here.
  peak_before_first_reset_ = rwkvlite::peak_rss_bytes();
  start(std::move(first_stage));
}

void StageMeter::start(std::string stage) {
  per_stage_peaks_ = reset_peak_rss() && per_stage_peaks_;
  current_ = std::move(stage);
  started_ = std::chrono::steady_clock::now();
  running_ = true;
}

void StageMeter::end_current() {
  if (!running_) return;
  Stage s;
  s.name = current_;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  s.peak_rss_bytes = peak_rss_since_reset_bytes();
  stages_.push_back(std::move(s));
  running_ = false;
}

void StageMeter::next(std::string stage) {
  end_current();
  start(std::move(stage));
}

void StageMeter::finish() { end_current(); }

uint64_t StageMeter::peak_rss_bytes() const {
  uint64_t peak = std::max(peak_before_first_reset_, rwkvlite::peak_rss_bytes());
  for (const Stage& s : stages_) peak = std::max(peak, s.peak_rss_bytes);
  return peak;
}

nlohmann::ordered_json StageMeter::to_json() const {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const Stage& s : stages_) {
    rows.push_back({{"stage", s.name}, {"seconds", s.seconds}, {"peak_rss_bytes", s.peak_rss_bytes}});
  }
  return {{"peak_rss_per_stage", per_stage_peaks_}, {"rows", std::move(rows)}};
}

}  // namespace rwkvlite
