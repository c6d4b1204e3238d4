// The TOML configuration of the compression pipeline: the top-level schema, loading with
// --set overrides and strict validation, the resolved JSON form and its hash.
//
// ---- Schema -------------------------------------------------------------------------------
//
//   [calibration]              # optional; used only when some pass needs calibration
//   text = "bundled"           # "bundled" (the repository's calibration text) or a file path,
//                              # relative paths taken from the config file's directory
//   offset = 0                 # byte offset into the text                         (>= 0)
//   bytes = 200000             # bytes of text to run through the dense model      (>= 1)
//   seed = 1234                # seed for everything random in the pipeline        (>= 0)
//   samples = 16384            # token positions whose activations are kept for    (>= 1)
//                              # predictor training (evenly spaced over the text)
//   interleave_zeros = false   # feed 0x00 after every byte, for models trained that way
//                              # (rwkv.cpp's tiny v6); calibrate on what the model will see
//
//   [[pass]]                   # any number of passes, run in the order written
//   type = "lowrank"           # a pass type of the PassRegistry given to the loader
//   ...                        # the type's own keys
//
// Each pass type's own keys are documented above its Options::read in
// compress/passes/<type>_pass.h (docs/config.md collects them).
//
// Every unknown key is an error naming its file:line:column and the closest known key; so
// is a wrong type, an out-of-range value, an unknown pass type or encoding, a malformed
// pattern, and malformed TOML. All are UsageError (exit code 2).
//
// ---- Overrides ----------------------------------------------------------------------------
//
// --set key=value, applied to the parsed TOML before validation (compress/pipeline/config_override.h).
//
// ---- Resolved form ------------------------------------------------------------------------
//
// `resolved` is the whole configuration after defaults and overrides, as JSON with keys in
// the order the code reads them (not the file's), numbers in their declared type
// (damping = 1 and damping = 1.0 resolve alike):
//   {"calibration": {"text", "offset", "bytes", "seed", "samples", "interleave_zeros"}, "passes": [{"type": ..., ...}, ...]}
// Two configs that mean the same thing have byte-identical resolved JSON, and so the same
// config_hash, which serves as a run id.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "compress/pipeline/pass.h"
#include "compress/pipeline/pass_registry.h"

namespace rwkvlite {

// ---- Pipeline config ----------------------------------------------------------------------

struct CalibrationConfig {
  std::string text = "bundled";  // as written
  std::string text_path;         // "bundled", or the path resolved against the config's directory
  int64_t offset = 0;
  int64_t bytes = 200000;
  uint64_t seed = 1234;
  int64_t samples = 16384;
  bool interleave_zeros = false;
};

struct PassSpec {
  std::string type;
  std::string location;           // "<file>:<line>:<column>" of its [[pass]] header
  nlohmann::ordered_json options;  // this pass's part of `resolved` ("type" first)
  std::unique_ptr<Pass> pass;

  // The pass's resolved settings as the compact file and the report record them: `options`
  // without "type" (the one serialisation of a pass's settings).
  nlohmann::ordered_json settings() const;
};

struct PipelineConfig {
  CalibrationConfig calibration;
  std::vector<PassSpec> passes;
  nlohmann::ordered_json resolved;
  std::string hash;  // config_hash(resolved)

  bool needs_calibration() const;
};

// Parses and validates a config file with --set overrides ("key=value" each). Every problem
// is a UsageError (a missing or unreadable file too).
PipelineConfig load_pipeline_config(const std::string& path, const PassRegistry& passes,
                                    const std::vector<std::string>& overrides = {});
// The same from text; `source_name` is used in messages and `base_dir` resolves relative paths.
PipelineConfig parse_pipeline_config(const std::string& toml_text, const std::string& source_name,
                                     const PassRegistry& passes, const std::vector<std::string>& overrides = {},
                                     const std::string& base_dir = ".");

// 16 lowercase hex digits of XXH64 over resolved.dump(): stable across runs and platforms.
std::string config_hash(const nlohmann::ordered_json& resolved);

}  // namespace rwkvlite
