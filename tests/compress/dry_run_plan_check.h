// Shared by test_dry_run_plan.cpp and test_torch_dry_run_plan.cpp: plans a shipped config with
// the dry run's plan_compress, runs the real compress on the tiny v5.2 model, and checks the
// plan against the file written: the data section byte for byte, the whole file exactly, or
// within the header's stated slack when the metadata holds measured numbers.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/pipeline.h"
#include "runtime/core/file_io.h"
#include "runtime/format/compact_format.h"
#include "tests/support/test_support.h"

namespace rwkvlite::test {

// Config files (configs/*.toml, sorted) that need LibTorch passes, or that do not.
inline std::vector<std::string> shipped_configs(bool needing_torch) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(source_dir() + "/configs")) {
    if (entry.path().extension() != ".toml") continue;
    const std::vector<uint8_t> bytes = read_file_bytes(entry.path().string(), 1u << 20);
    const std::string text(bytes.begin(), bytes.end());
    const bool torch = text.find("\"sparsity_predictor\"") != std::string::npos ||
                       text.find("\"cluster_head\"") != std::string::npos;
    if (torch == needing_torch) out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline void check_plan_equals_written(const std::string& config_path) {
  const std::string model = tiny_model_path("5v2-730K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(model);
  INFO(config_path);
  CompressOptions o;
  o.model_path = model;
  o.config_path = config_path;
  o.output_path = scratch_dir() + "/plan-" + std::filesystem::path(config_path).stem().string() + ".rwkvlite";
  o.overrides = {"calibration.bytes=20000"};
  o.force = true;
  o.threads = 2;
  const CompressPlanSummary plan = plan_compress(o, builtin_passes());
  REQUIRE(plan.unknowns.empty());  // the shipped configs use rank and divisor rules
  REQUIRE(run_compress(o, builtin_passes()) == 0);

  const std::vector<uint8_t> file = read_file_bytes(o.output_path, 1u << 30);
  REQUIRE(file.size() >= format::kPreambleSize);
  const format::Preamble p = format::decode_preamble(file.data());
  CHECK(plan.size.data_bytes == static_cast<int64_t>(p.data_size));
  const auto written = static_cast<int64_t>(file.size());
  if (plan.header_slack_bytes == 0) {
    CHECK(plan.size.header_bytes == static_cast<int64_t>(p.header_size));
    CHECK(plan.size.file_bytes == written);
  } else {
    CHECK(plan.size.file_bytes <= written);
    CHECK(written <= plan.size.file_bytes + plan.header_slack_bytes);
  }
}

}  // namespace rwkvlite::test
