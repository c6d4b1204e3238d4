// Wall time and peak resident memory of each stage of a compress run (loading, calibration,
// each pass, writing), for the report's "stages": where a run spends its time and which stage
// sets its memory peak.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace rwkvlite {

class StageMeter {
 public:
  struct Stage {
    std::string name;
    double seconds = 0;
    uint64_t peak_rss_bytes = 0;  // the stage's own peak when the kernel allows a reset, else the process's so far
  };

  // Starts the first stage.
  explicit StageMeter(std::string first_stage);
  // Ends the current stage and starts the next one.
  void next(std::string stage);
  // Ends the current stage; the meter records nothing more.
  void finish();

  const std::vector<Stage>& stages() const { return stages_; }
  // The process's peak RSS: the largest stage peak, or the process figure if larger.
  uint64_t peak_rss_bytes() const;
  // [{"stage", "seconds", "peak_rss_bytes"}, ...], and whether each peak is the stage's own.
  nlohmann::ordered_json to_json() const;

 private:
  void start(std::string stage);
  void end_current();

  std::vector<Stage> stages_;
  std::string current_;
  std::chrono::steady_clock::time_point started_;
  bool running_ = false;
  bool per_stage_peaks_ = true;  // every reset so far succeeded
  uint64_t peak_before_first_reset_ = 0;
};

}  // namespace rwkvlite
