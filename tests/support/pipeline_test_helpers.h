// Helpers shared by the end-to-end pipeline tests: compress a model with a repository config
// into the scratch directory, and compare logits.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "runtime/core/file_io.h"
#include "runtime/engine/engine.h"
#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/pipeline.h"
#include "tests/support/test_support.h"

namespace rwkvlite::test {

inline std::string config(const std::string& name) { return source_dir() + "/configs/" + name; }

// Runs `rwkvlite compress` in-process; returns the output path.
inline std::string compress(const std::string& model, const std::string& cfg, const std::string& out_name, int threads,
                            std::vector<std::string> overrides = {},
                            std::optional<uint64_t> seed = std::nullopt) {
  CompressOptions o;
  o.model_path = model;
  o.config_path = config(cfg);
  o.output_path = scratch_dir() + "/" + out_name;
  o.force = true;
  o.threads = threads;
  o.overrides = std::move(overrides);
  o.seed = seed;
  REQUIRE(run_compress(o, builtin_passes()) == 0);
  return o.output_path;
}

// Logits after feeding `text` byte by byte to a fresh state.
inline std::vector<float> logits_after(Engine& engine, const std::string& text) {
  State s = engine.new_state();
  std::vector<float> logits(static_cast<size_t>(engine.vocab_size()));
  for (unsigned char c : text) engine.eval_token(c, s, logits.data());
  return logits;
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

inline std::vector<uint8_t> bytes_of(const std::string& path) { return read_file_bytes(path, 1u << 30); }

}  // namespace rwkvlite::test
