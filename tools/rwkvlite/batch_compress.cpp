#include "tools/rwkvlite/batch_compress.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <new>
#include <optional>

#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "compress/pipeline/config.h"
#include "tools/rwkvlite/batch_inputs.h"

namespace rwkvlite::cli {
namespace {

namespace fs = std::filesystem;

struct BatchItem {
  std::string input, output, report;
};

// One row of the summary. file_bytes and dense_fp16_bytes are known only for a success.
struct BatchRow {
  std::string input, output;
  std::string error;  // empty: ok
  int64_t file_bytes = 0, dense_fp16_bytes = 0;
  double seconds = 0;

  bool ok() const { return error.empty(); }
  double ratio() const { return static_cast<double>(dense_fp16_bytes) / static_cast<double>(file_bytes); }
  std::string status() const { return ok() ? "ok" : "failed: " + error; }
};

std::vector<BatchItem> plan_items(const BatchCompressOptions& o) {
  if (o.inputs.empty()) throw UsageError("no input model given");
  std::vector<BatchItem> items;
  std::map<std::string, std::string> by_stem;
  for (const std::string& input : o.inputs) {
    const std::string stem = input_stem(input);
    const auto [it, fresh] = by_stem.emplace(stem, input);
    if (!fresh) {
      throw UsageError("inputs '" + it->second + "' and '" + input + "' have the same stem '" + stem +
                       "', so both would be written to " + stem + ".rwkvlite");
    }
    const std::string output = (fs::path(o.output_dir) / (stem + ".rwkvlite")).string();
    items.push_back({input, output, output + ".report.json"});
  }
  return items;
}

// Reads what the summary needs from the finished item: its size from the file itself, the dense
// size from the report run_compress wrote next to it.
void measure(const BatchItem& item, BatchRow& row) {
  row.file_bytes = static_cast<int64_t>(file_size_or_throw(item.output));
  const std::vector<uint8_t> bytes = read_file_bytes(item.report, 1u << 30);
  const nlohmann::json report = nlohmann::json::parse(bytes.begin(), bytes.end());
  row.dense_fp16_bytes = report.at("dense_fp32_bytes").get<int64_t>() / 2;
}

// Removes what a failed item left behind that was not there before it started (a compact file
// whose report could not be written), so a failed row never has an output.
void remove_new_files(const BatchItem& item, bool output_existed, bool report_existed) {
  std::error_code ec;
  if (!output_existed) fs::remove(item.output, ec);
  if (!report_existed) fs::remove(item.report, ec);
}

BatchRow compress_one(const BatchCompressOptions& o, const BatchItem& item, const PassRegistry& passes) {
  BatchRow row;
  row.input = item.input;
  row.output = item.output;
  CompressOptions one = o.common;
  one.model_path = item.input;
  one.output_path = item.output;
  one.report_path.clear();  // <output>.report.json
  const bool output_existed = fs::exists(item.output), report_existed = fs::exists(item.report);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    const int rc = run_compress(one, passes);
    if (rc != 0) throw Error("compress exited with code " + std::to_string(rc), rc);
    measure(item, row);
  } catch (const std::bad_alloc&) {
    row.error = "out of memory";
  } catch (const std::exception& e) {  // rwkvlite::Error and anything else: this item only
    row.error = e.what();
  }
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!row.ok()) remove_new_files(item, output_existed, report_existed);
  return row;
}

// The table on stdout: columns as wide as their longest cell, numbers right-aligned.
void print_table(const std::vector<BatchRow>& rows) {
  struct Cells {
    std::string input, status, bytes, ratio, seconds;
  };
  std::vector<Cells> cells = {{"input", "status", "file_bytes", "ratio", "seconds"}};
  for (const BatchRow& r : rows) {
    cells.push_back({r.input, r.status(), r.ok() ? std::to_string(r.file_bytes) : "-",
                     r.ok() ? fmt::format("{:.2f}", r.ratio()) : "-", fmt::format("{:.2f}", r.seconds)});
  }
  size_t w[5] = {0, 0, 0, 0, 0};
  for (const Cells& c : cells) {
    w[0] = std::max(w[0], c.input.size());
    w[1] = std::max(w[1], c.status.size());
    w[2] = std::max(w[2], c.bytes.size());
    w[3] = std::max(w[3], c.ratio.size());
    w[4] = std::max(w[4], c.seconds.size());
  }
  for (const Cells& c : cells) {
    std::printf("%s\n", fmt::format("{:<{}}  {:<{}}  {:>{}}  {:>{}}  {:>{}}", c.input, w[0], c.status, w[1], c.bytes,
                                    w[2], c.ratio, w[3], c.seconds, w[4])
                            .c_str());
  }
  std::fflush(stdout);
}

void write_summary(const BatchCompressOptions& o, const PipelineConfig& config, const std::vector<BatchRow>& rows) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  int64_t ok = 0;
  for (const BatchRow& r : rows) {
    nlohmann::ordered_json j = {{"input", r.input}, {"output", r.ok() ? nlohmann::ordered_json(r.output) : nullptr},
                                {"status", r.ok() ? "ok" : "failed"}};
    if (r.ok()) {
      ++ok;
      j["file_bytes"] = r.file_bytes;
      j["dense_fp16_bytes"] = r.dense_fp16_bytes;
      j["ratio"] = r.ratio();
    } else {
      j["error"] = r.error;
    }
    j["seconds"] = r.seconds;
    list.push_back(std::move(j));
  }
  const nlohmann::ordered_json summary = {{"schema_version", 1},
                                          {"config", o.common.config_path},
                                          {"config_hash", config.hash},
                                          {"inputs", rows.size()},
                                          {"succeeded", ok},
                                          {"failed", static_cast<int64_t>(rows.size()) - ok},
                                          {"rows", std::move(list)}};
  const std::string path = (fs::path(o.output_dir) / kBatchSummaryName).string();
  write_file_atomically(path, summary.dump(2) + "\n");
  spdlog::info("batch summary: {}", path);
}

}  // namespace

int run_batch_compress(const BatchCompressOptions& o, const PassRegistry& passes) {
  if (o.common.dry_run) throw UsageError("--dry-run takes one MODEL with -o OUTPUT, not --output-dir");
  if (!o.common.report_path.empty()) {
    throw UsageError("--report applies to -o OUTPUT; a batch writes DIR/<stem>.rwkvlite.report.json");
  }
  // The config once, up front: a bad one fails before any model is read. run_compress loads it
  // again per item (the same file and overrides, so the same run id).
  std::vector<std::string> overrides = o.common.overrides;
  if (o.common.seed) overrides.push_back("calibration.seed=" + std::to_string(*o.common.seed));
  const PipelineConfig config = load_pipeline_config(o.common.config_path, passes, overrides);

  const std::vector<BatchItem> items = plan_items(o);
  if (fs::exists(o.output_dir) && !fs::is_directory(o.output_dir)) {
    throw UsageError("--output-dir '" + o.output_dir + "' exists and is not a directory");
  }
  for (const BatchItem& item : items) refuse_existing_output(item.output, o.common.force);
  refuse_existing_output((fs::path(o.output_dir) / kBatchSummaryName).string(), o.common.force);
  std::error_code ec;
  fs::create_directories(o.output_dir, ec);
  if (ec) throw UsageError("cannot create --output-dir '" + o.output_dir + "': " + ec.message());

  spdlog::info("batch: {} inputs, config {} (run id {}), outputs in {}", items.size(), o.common.config_path,
               config.hash, o.output_dir);
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < items.size(); ++i) {
    spdlog::info("[{}/{}] compressing {}", i + 1, items.size(), items[i].input);
    rows.push_back(compress_one(o, items[i], passes));
    // The reader's messages name the file, so the item number is what this line adds.
    if (!rows.back().ok()) spdlog::error("[{}/{}] failed: {}", i + 1, items.size(), rows.back().error);
  }
  write_summary(o, config, rows);
  print_table(rows);
  size_t failed = 0;
  for (const BatchRow& r : rows) failed += r.ok() ? 0 : 1;
  if (failed > 0) spdlog::warn("batch: {} of {} inputs failed", failed, rows.size());
  return failed == 0 ? kExitOk : kExitPartialFailure;
}

}  // namespace rwkvlite::cli
