// RowCache on a small hand-made compact file: LRU order, exact reads, coalescing, the memory
// bound (staging included), bad requests, and checksum failures.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/core/error.h"
#include "runtime/format/compact_writer.h"
#include "runtime/store/row_cache.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

constexpr int64_t kRows = 64, kCols = 8;

// Two row-addressable tensors whose row r holds the value r (and -r) in every column.
std::string write_rows_file(const std::string& name) {
  const std::string path = scratch_dir() + "/" + name;
  std::vector<float> a(kRows * kCols), b(kRows * kCols);
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t c = 0; c < kCols; ++c) {
      a[static_cast<size_t>(r * kCols + c)] = static_cast<float>(r);
      b[static_cast<size_t>(r * kCols + c)] = -static_cast<float>(r);
    }
  }
  format::CompactWriter w(path);
  w.add_tensor("a", format::Encoding::F32, {}, {kRows, kCols}, a.data(), format::kChecksumEveryRow);
  w.add_tensor("b", format::Encoding::F32, {}, {kRows, kCols}, b.data(), format::kChecksumEveryRow);
  w.add_tensor("short", format::Encoding::F32, {}, {2, kCols}, a.data(), format::kChecksumEveryRow);
  w.finish(nlohmann::json::object(), nlohmann::json::object(), nlohmann::json::object());
  return path;
}

float first_value(const uint8_t* row) {
  float v;
  std::memcpy(&v, row, sizeof v);
  return v;
}

}  // namespace

TEST_CASE("a row cache serves the right rows, reads each miss once and evicts least recently used", "[row_cache]") {
  auto file = std::make_shared<format::CompactFile>(format::CompactFile::open(write_rows_file("rows.rwkvlite")));
  auto counter = std::make_shared<ResidencyCounter>();
  RowCache cache(file, {"a", "b"}, 8, counter);
  cache.enable_read_log(true);
  REQUIRE(cache.entry_bytes() == 2 * kCols * 4);

  auto visit = [&](std::vector<int64_t> rows) {
    std::vector<int64_t> seen;
    cache.visit(rows.data(), static_cast<int64_t>(rows.size()), [&](int64_t r, const uint8_t* const* parts) {
      CHECK(first_value(parts[0]) == static_cast<float>(r));
      CHECK(first_value(parts[1]) == -static_cast<float>(r));
      seen.push_back(r);
    });
    CHECK(seen == rows);
  };

  visit({1, 2, 3, 10});
  CHECK(cache.read_log() == std::vector<int64_t>{1, 2, 3, 10});
  // Rows 1..3 are one run: one read per tensor; row 10 another.
  CHECK(cache.counters().read_calls == 4);
  CHECK(cache.counters().misses == 4);
  visit({2, 3});
  CHECK(cache.counters().hits == 2);
  CHECK(cache.counters().rows_read == 4);

  // Fill to capacity, then one more: the least recently used row (1) is the one evicted.
  visit({20, 21, 22, 23});
  CHECK(cache.resident_rows() == 8);
  visit({30});
  CHECK(cache.resident_rows() == 8);
  cache.clear_read_log();
  visit({1});
  CHECK(cache.read_log() == std::vector<int64_t>{1});
  cache.clear_read_log();
  visit({2, 3, 30});
  CHECK(cache.read_log().empty());

  // Never more than capacity entries' bytes, staging of coalesced reads included.
  visit({40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60});
  CHECK(counter->peak() <= 8 * static_cast<int64_t>(cache.entry_bytes()));
  CHECK(counter->current() == cache.resident_rows() * static_cast<int64_t>(cache.entry_bytes()));
}

TEST_CASE("a row cache with room for a working set stops reading", "[row_cache]") {
  auto file = std::make_shared<format::CompactFile>(format::CompactFile::open(write_rows_file("rows-ws.rwkvlite")));
  RowCache cache(file, {"a"}, kRows, std::make_shared<ResidencyCounter>());
  for (int pass = 0; pass < 3; ++pass) {
    for (int64_t begin = 0; begin < kRows; begin += 16) cache.visit_range(begin, 16, [](int64_t, const uint8_t* const*) {});
  }
  CHECK(cache.counters().rows_read == kRows);
  CHECK(cache.counters().hits == 2 * kRows);
}

TEST_CASE("a row cache rejects bad requests and corrupted rows with clear errors", "[row_cache]") {
  const std::string path = write_rows_file("rows-bad.rwkvlite");
  auto file = std::make_shared<format::CompactFile>(format::CompactFile::open(path));
  auto counter = std::make_shared<ResidencyCounter>();
  CHECK_THROWS_AS(RowCache(file, {"a"}, 0, counter), UsageError);
  CHECK_THROWS_AS(RowCache(file, {"missing"}, 4, counter), InputError);
  CHECK_THROWS_AS(RowCache(file, {"a", "short"}, 4, counter), InputError);
  RowCache cache(file, {"a"}, 4, counter);
  const int64_t out_of_range = kRows, descending[] = {5, 3};
  auto nothing = [](int64_t, const uint8_t* const*) {};
  CHECK_THROWS_AS(cache.visit(&out_of_range, 1, nothing), UsageError);
  CHECK_THROWS_AS(cache.visit(descending, 2, nothing), UsageError);

  // Corrupt row 7 of "a": reading row 6 is fine, row 7 fails, and the cache stays usable.
  const format::TensorInfo t = file->tensor("a");
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(format::kPreambleSize + t.offset + 7 * t.row_bytes + 1));
    f.put('\x7f');
  }
  const int64_t six = 6, seven = 7;
  CHECK_NOTHROW(cache.visit(&six, 1, nothing));
  CHECK_THROWS_AS(cache.visit(&seven, 1, nothing), InputError);
  CHECK(counter->current() == cache.resident_rows() * static_cast<int64_t>(cache.entry_bytes()));
  CHECK_NOTHROW(cache.visit(&six, 1, nothing));
  // The same inside a coalesced read of rows 5..8.
  auto counter2 = std::make_shared<ResidencyCounter>();
  RowCache roomy(file, {"a"}, 16, counter2);
  CHECK_THROWS_AS(roomy.visit_range(5, 4, nothing), InputError);
  CHECK(roomy.counters().rows_read == 0);  // nothing unverified was kept
  CHECK(counter2->current() == roomy.resident_rows() * static_cast<int64_t>(roomy.entry_bytes()));
  CHECK_NOTHROW(roomy.visit_range(5, 2, nothing));
}
