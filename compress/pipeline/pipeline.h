// `rwkvlite compress`: config -> dense model -> calibration -> passes -> compact file + report.
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "compress/pipeline/pass_registry.h"

namespace rwkvlite {

struct CompressOptions {
  std::string model_path, output_path, config_path;
  std::vector<std::string> overrides;  // --set key=value
  std::optional<uint64_t> seed;        // --seed: overrides calibration.seed
  bool dry_run = false, force = false;
  int threads = 2;
  float ln_x_eps = NAN;                // NaN: what the model file implies
  std::string report_path;             // default: <output>.report.json
};

// Returns the process exit code; throws rwkvlite::Error subclasses for bad input.
int run_compress(const CompressOptions& options, const PassRegistry& passes);

// xxh64 of a whole file, streamed (provenance of inputs), as 16 hex digits.
std::string file_xxh64(const std::string& path);

}  // namespace rwkvlite
