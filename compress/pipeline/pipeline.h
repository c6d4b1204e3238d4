// `rwkvlite compress`: config -> dense model -> calibration -> passes -> compact file + report.
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "compress/pipeline/compact_export.h"
#include "compress/pipeline/pass_registry.h"

namespace rwkvlite {

struct CompressOptions {
  std::string model_path, output_path, config_path;
  // When non-empty, the config itself (made by the caller, e.g. from a sensitivity profile);
  // config_path then only names it in logs and messages.
  std::string config_text;
  std::vector<std::string> overrides;  // --set key=value
  std::optional<uint64_t> seed;        // --seed: overrides calibration.seed
  bool dry_run = false, force = false;
  int threads = 2;
  float ln_x_eps = NAN;                // NaN: what the model file implies
  std::string report_path;             // default: <output>.report.json
  // Directory of cached calibration statistics (calibration_cache.h); empty: always calibrate.
  std::string calibration_cache_dir;
};

// Returns the process exit code; throws rwkvlite::Error subclasses for bad input.
// With dry_run it prints plan_compress's result on stdout instead of compressing.
int run_compress(const CompressOptions& options, const PassRegistry& passes);

// What a dry run knows. Every pass plans on a shapes-and-encodings copy of the model as the
// passes before it leave it (pass.h, CompressPlan), so `size` is the size of the file the run
// writes: exactly, when `unknowns` is empty and header_slack_bytes is 0. Measured numbers in
// the metadata (sparsity thresholds) are planned as 0: the data section is still exact and
// the header is at most header_slack_bytes longer. The header's provenance is computed as the
// run computes it (the model file's hash, the calibration text's hash and token count).
struct CompressPlanSummary {
  CompactFileSize size;
  int64_t header_slack_bytes = 0;
  std::vector<std::string> unknowns;  // non-empty: `size` is not what will be written
  int64_t dense_fp32_bytes = 0;
  int64_t calibration_bytes = 0;      // estimate of what calibration holds in memory
  int64_t peak_memory_bytes = 0;      // upper estimate: the dense model twice plus calibration
  // With a calibration cache directory and a pass that needs calibration: the entry's path and
  // whether it exists (a run may still find it unreadable and recompute).
  std::string calibration_cache_path;
  bool calibration_cache_hit = false;
};
CompressPlanSummary plan_compress(const CompressOptions& options, const PassRegistry& passes);

// xxh64 of a whole file, streamed (provenance of inputs), as 16 hex digits.
std::string file_xxh64(const std::string& path);

}  // namespace rwkvlite
