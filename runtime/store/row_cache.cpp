#include "runtime/store/row_cache.h"

#include <algorithm>
#include <cstring>

#include "runtime/core/error.h"

namespace rwkvlite {

RowCache::RowCache(std::shared_ptr<const format::CompactFile> file, const std::vector<std::string>& tensors,
                   int64_t capacity_rows, std::shared_ptr<ResidencyCounter> counter)
    : file_(std::move(file)), counter_(std::move(counter)) {
  if (!file_ || tensors.empty()) throw UsageError("RowCache: a file and at least one tensor are required");
  if (capacity_rows < 1) throw UsageError("row cache capacity must be at least 1 row, got " + std::to_string(capacity_rows));
  for (const std::string& name : tensors) {
    const format::TensorInfo& t = file_->tensor(name);  // InputError if absent
    if (!parts_.empty() && t.rows != rows_) {
      throw InputError("'" + file_->path() + "': '" + name + "' has " + std::to_string(t.rows) + " rows but '" +
                       parts_.front()->name + "' has " + std::to_string(rows_) + "; they must match row for row");
    }
    rows_ = t.rows;
    parts_.push_back(&t);
    part_offset_.push_back(entry_bytes_);
    entry_bytes_ += static_cast<size_t>(t.row_bytes);
  }
  if (rows_ > INT32_MAX) throw InputError("'" + file_->path() + "': too many rows for a row cache");
  capacity_ = std::min(capacity_rows, rows_);
  slot_of_row_.assign(static_cast<size_t>(rows_), -1);
  slots_.resize(static_cast<size_t>(capacity_));
  slab_ = std::make_unique_for_overwrite<uint8_t[]>(static_cast<size_t>(capacity_) * entry_bytes_);
  for (size_t s = 0; s < slots_.size(); ++s) slots_[s].bytes = slab_.get() + s * entry_bytes_;
  for (size_t s = slots_.size(); s-- > 0;) free_slots_.push_back(s);
  part_ptrs_.resize(parts_.size());
}

RowCache::~RowCache() = default;

void RowCache::check_rows(const int64_t* rows, int64_t n) const {
  for (int64_t i = 0; i < n; ++i) {
    if (rows[i] < 0 || rows[i] >= rows_) {
      throw UsageError("row " + std::to_string(rows[i]) + " of '" + parts_.front()->name + "' is out of range [0, " +
                       std::to_string(rows_) + ")");
    }
    // Ascending order makes distinctness a local check and lets runs be coalesced.
    if (i > 0 && rows[i] <= rows[i - 1]) throw UsageError("RowCache::visit: rows must be strictly ascending");
  }
}

size_t RowCache::new_entry(int64_t row) {
  // Callers evict first, so a free slot exists.
  const size_t s = free_slots_.back();
  free_slots_.pop_back();
  Entry& e = slots_[s];
  e.row = row;
  e.resident = ResidentBytes(counter_, static_cast<int64_t>(entry_bytes_));
  e.pinned_batch = batch_;
  lru_.push_front(s);
  e.lru_pos = lru_.begin();
  slot_of_row_[static_cast<size_t>(row)] = static_cast<int32_t>(s);
  return s;
}

std::list<size_t>::iterator RowCache::drop(std::list<size_t>::iterator pos) {
  Entry& e = slots_[*pos];
  slot_of_row_[static_cast<size_t>(e.row)] = -1;
  e.row = -1;
  e.resident = ResidentBytes();
  free_slots_.push_back(*pos);
  return lru_.erase(pos);
}

void RowCache::evict_to(int64_t keep) {
  auto it = lru_.end();
  while (static_cast<int64_t>(lru_.size()) > keep && it != lru_.begin()) {
    --it;
    if (slots_[*it].pinned_batch == batch_) continue;  // in use by the current visit
    it = drop(it);
  }
}

void RowCache::read_run(int64_t first, int64_t count) {
  for (int64_t done = 0; done < count;) {
    // A coalesced read of L rows needs L entries plus L rows of staging. It only uses free room:
    // evicting resident rows just to make room for staging would make a cache sized for its
    // working set re-read rows forever. A full cache reads row by row, evicting one at a time.
    const int64_t free_rows = capacity_ - resident_rows();
    const int64_t len = free_rows >= 4 ? std::min(count - done, free_rows / 2) : 1;
    const int64_t row = first + done;
    if (len == 1) {
      evict_to(capacity_ - 1);
      const size_t s = new_entry(row);
      try {
        for (size_t k = 0; k < parts_.size(); ++k) {
          file_->read_rows(parts_[k]->name, row, 1, slots_[s].bytes + part_offset_[k]);
          ++counters_.read_calls;
        }
      } catch (...) {
        // Drop the half-filled entry so the cache never serves unverified bytes.
        drop(slots_[s].lru_pos);
        throw;
      }
    } else {
      const size_t staging_bytes = static_cast<size_t>(len) * entry_bytes_;
      const auto staging = std::make_unique_for_overwrite<uint8_t[]>(staging_bytes);
      ResidentBytes staged(counter_, static_cast<int64_t>(staging_bytes));
      size_t offset = 0;
      for (size_t k = 0; k < parts_.size(); ++k) {
        file_->read_rows(parts_[k]->name, row, len, staging.get() + offset);
        ++counters_.read_calls;
        offset += static_cast<size_t>(len) * parts_[k]->row_bytes;
      }
      for (int64_t i = 0; i < len; ++i) {
        Entry& e = slots_[new_entry(row + i)];
        size_t part_base = 0;
        for (size_t k = 0; k < parts_.size(); ++k) {
          const size_t rb = static_cast<size_t>(parts_[k]->row_bytes);
          std::memcpy(e.bytes + part_offset_[k], staging.get() + part_base + static_cast<size_t>(i) * rb, rb);
          part_base += static_cast<size_t>(len) * rb;
        }
      }
    }
    counters_.rows_read += len;
    if (log_reads_) {
      for (int64_t i = 0; i < len; ++i) read_log_.push_back(row + i);
    }
    done += len;
  }
}

int64_t RowCache::make_resident(const int64_t* rows, int64_t n) {
  ++batch_;
  const int64_t batch = std::min(n, capacity_);
  missing_.clear();
  for (int64_t i = 0; i < batch; ++i) {
    const int32_t s = slot_of_row_[static_cast<size_t>(rows[i])];
    if (s >= 0) {
      ++counters_.hits;
      Entry& e = slots_[static_cast<size_t>(s)];
      e.pinned_batch = batch_;
      lru_.splice(lru_.begin(), lru_, e.lru_pos);
    } else {
      ++counters_.misses;
      missing_.push_back(rows[i]);
    }
  }
  for (size_t i = 0; i < missing_.size();) {
    size_t j = i + 1;
    while (j < missing_.size() && missing_[j] == missing_[j - 1] + 1) ++j;
    read_run(missing_[i], static_cast<int64_t>(j - i));
    i = j;
  }
  return batch;
}

const uint8_t* const* RowCache::parts_of(int64_t row) {
  const Entry& e = slots_[static_cast<size_t>(slot_of_row_[static_cast<size_t>(row)])];
  for (size_t k = 0; k < parts_.size(); ++k) part_ptrs_[k] = e.bytes + part_offset_[k];
  return part_ptrs_.data();
}

}  // namespace rwkvlite
