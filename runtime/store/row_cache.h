// A bounded, least-recently-used cache of encoded rows read on demand from a compact file.
//
// One cache serves one or more tensors with the same row count, and an entry holds row r of
// each of them: a channel-mix neuron is its key row and its value row, always used together.
// Every row comes from CompactFile::read_rows, so each read verifies the checksum blocks it
// covers; with one checksum per row (row-addressable tensors) exactly the rows asked for are
// read and verified. Runs of consecutive missing rows (e.g. the rows of one head cluster) are
// read with one call per tensor.
//
// Memory bound: the cache never holds more than capacity() entries' worth of row bytes, and
// that includes the staging buffer of a coalesced read. Every held byte is registered with the
// ResidencyCounter for as long as it is held.
//
// Deterministic: which rows are read and evicted depends only on the sequence of visits. Not
// thread-safe: one cache belongs to one engine component, which uses it from one thread.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "runtime/format/compact_reader.h"
#include "runtime/store/residency.h"

namespace rwkvlite {

struct RowCacheCounters {
  int64_t rows_read = 0;  // rows (entries) read from the file
  int64_t hits = 0;       // rows visited that were already resident
  int64_t misses = 0;     // rows visited that had to be read
  int64_t read_calls = 0; // CompactFile::read_rows calls
};

class RowCache {
 public:
  // `tensors`: names of tensors with equal row counts (InputError otherwise, or when absent).
  // capacity_rows >= 1 (UsageError otherwise); larger than the row count is clamped to it.
  RowCache(std::shared_ptr<const format::CompactFile> file, const std::vector<std::string>& tensors,
           int64_t capacity_rows, std::shared_ptr<ResidencyCounter> counter);
  ~RowCache();
  RowCache(const RowCache&) = delete;
  RowCache& operator=(const RowCache&) = delete;

  int64_t rows() const { return rows_; }
  int64_t capacity() const { return capacity_; }
  size_t part_count() const { return parts_.size(); }
  const format::TensorInfo& part(size_t k) const { return *parts_[k]; }
  size_t entry_bytes() const { return entry_bytes_; }  // bytes of one entry (all parts of a row)
  int64_t resident_rows() const { return static_cast<int64_t>(lru_.size()); }

  // Calls fn(row, parts) for each of rows[0..n) in the given order, where parts[k] points at the
  // encoded row of tensor k, valid only during that call. Rows must be distinct and in range
  // (UsageError otherwise). A failed checksum throws InputError; the cache stays consistent.
  template <typename Fn>
  void visit(const int64_t* rows, int64_t n, Fn&& fn) {
    visit_batches(rows, n, [&](const int64_t* batch, int64_t count) {
      for (int64_t i = 0; i < count; ++i) fn(batch[i], parts_of(batch[i]));
    });
  }
  // Like visit, but hands over whole batches: fn(batch_rows, count) for consecutive slices of
  // rows[0..n), each at most capacity() rows, all resident and pinned during the call, so that
  // fn may read them through resident_parts() from several threads at once (nothing in the cache
  // changes until fn returns).
  template <typename Fn>
  void visit_batches(const int64_t* rows, int64_t n, Fn&& fn) {
    check_rows(rows, n);
    for (int64_t done = 0; done < n;) {
      const int64_t batch = make_resident(rows + done, n - done);
      fn(rows + done, batch);
      done += batch;
    }
  }
  // The encoded rows of tensor k for rows[0..count) of the current batch (visit_batches only),
  // into out, for the gathered kernels (format::dot_rows_gathered).
  void resident_parts(const int64_t* rows, int64_t count, size_t k, std::vector<const uint8_t*>& out) const {
    out.resize(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
      out[static_cast<size_t>(i)] = slots_[static_cast<size_t>(slot_of_row_[static_cast<size_t>(rows[i])])].bytes + part_offset_[k];
    }
  }
  // Rows [begin, begin + count) in ascending order.
  template <typename Fn>
  void visit_range(int64_t begin, int64_t count, Fn&& fn) {
    range_.resize(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) range_[static_cast<size_t>(i)] = begin + i;
    visit(range_.data(), count, fn);
  }

  const RowCacheCounters& counters() const { return counters_; }

  // For tests and audits: every row read from the file, in read order, since enabled/cleared.
  void enable_read_log(bool on) { log_reads_ = on; }
  const std::vector<int64_t>& read_log() const { return read_log_; }
  void clear_read_log() { read_log_.clear(); }

 private:
  struct Entry {
    int64_t row = -1;
    // entry_bytes_ in slab_: part 0's row, then part 1's, ...
    uint8_t* bytes = nullptr;
    ResidentBytes resident;
    uint64_t pinned_batch = 0;   // equal to batch_ while the current batch uses it
    std::list<size_t>::iterator lru_pos;
  };

  void check_rows(const int64_t* rows, int64_t n) const;
  // Makes a prefix of rows[0..n) resident and pinned until the next call; returns its length.
  int64_t make_resident(const int64_t* rows, int64_t n);
  // Reads rows [first, first + count) (all missing) into new entries.
  void read_run(int64_t first, int64_t count);
  // Frees unpinned least-recently-used entries until at most `keep` remain (or none unpinned).
  void evict_to(int64_t keep);
  std::list<size_t>::iterator drop(std::list<size_t>::iterator pos);  // frees one entry
  size_t new_entry(int64_t row);
  const uint8_t* const* parts_of(int64_t row);

  std::shared_ptr<const format::CompactFile> file_;
  std::vector<const format::TensorInfo*> parts_;
  std::vector<size_t> part_offset_;
  std::shared_ptr<ResidencyCounter> counter_;
  int64_t rows_ = 0, capacity_ = 0;
  size_t entry_bytes_ = 0;

  std::vector<int32_t> slot_of_row_;  // -1 when not resident
  // One allocation for every slot's bytes (slot s at s * entry_bytes_), made once: a cache that
  // misses on every token would otherwise call malloc and free per row. It is allocated
  // uninitialized, so pages of slots never used are never touched and take no memory; every
  // byte of a slot is read from the file before use. The bytes of held entries are what the
  // ResidencyCounter counts.
  std::unique_ptr<uint8_t[]> slab_;
  std::vector<Entry> slots_;
  std::vector<size_t> free_slots_;
  std::list<size_t> lru_;  // slot indices, most recently used first
  uint64_t batch_ = 0;
  std::vector<const uint8_t*> part_ptrs_;
  std::vector<int64_t> range_, missing_;
  RowCacheCounters counters_;
  bool log_reads_ = false;
  std::vector<int64_t> read_log_;
};

}  // namespace rwkvlite
