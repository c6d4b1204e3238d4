// Report rows finished out of order (on worker threads) passed on in report order: row i goes
// to the callback as soon as rows 0..i are all finished, so progress moves while a slow pass
// works and the log and the report keep a deterministic order whatever the thread count.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "compress/pipeline/pass.h"

namespace rwkvlite {

class OrderedRows {
 public:
  OrderedRows(size_t count, std::function<void(const PassReportRow&)> on_row)
      : rows_(count), on_row_(std::move(on_row)) {}

  // Thread-safe; each index once. The callback runs under the lock, so never two at once.
  void finish(size_t index, PassReportRow row) {
    std::lock_guard<std::mutex> lock(mutex_);
    rows_.at(index) = std::move(row);
    while (next_ < rows_.size() && rows_[next_]) {
      if (on_row_) on_row_(*rows_[next_]);
      ++next_;
    }
  }

  // Every row, in order (call after all are finished).
  std::vector<PassReportRow> take() {
    std::vector<PassReportRow> out;
    for (auto& r : rows_) out.push_back(std::move(r.value()));
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<std::optional<PassReportRow>> rows_;
  size_t next_ = 0;
  std::function<void(const PassReportRow&)> on_row_;
};

}  // namespace rwkvlite
