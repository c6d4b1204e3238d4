// A live progress line on stderr, drawn only when stderr is a terminal and info messages are
// logged (not with --quiet).
//
// Long stages (calibration, passes, evaluation) also log one line per step; this adds a
// redrawn "label [####....] 45% detail" line between them for a person watching a terminal,
// and stays silent in logs, pipes and CI (or when RWKVLITE_NO_PROGRESS is set), so captured
// output is the same with or without it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace rwkvlite {

class ProgressLine {
 public:
  // total <= 0: unknown, the line shows a count instead of a bar.
  ProgressLine(std::string label, int64_t total);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // Redraws at most ten times a second (and always at done == total).
  void update(int64_t done, const std::string& detail = "");
  // Erases the line, e.g. before a log line is written; the next update draws it again.
  void clear();

  static bool enabled();

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace rwkvlite
