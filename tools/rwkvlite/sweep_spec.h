// A sweep file and the runs it expands to (`rwkvlite sweep`, docs/sweeps.md).
//
//   base_config = "../all-techniques.toml"   # relative paths: from the sweep file's directory
//   models = ["../../models/reference/rwkv5-ref-6x256.pth", ...]
//
//   [eval]                    # how every run is scored against its dense model
//   bytes = 20000             # held-out bytes of the bundled text (0: all of them)
//   text = "notes.txt"        # optional: your own text, read from `offset` (default 0)
//   interleave_zeros = false
//
//   [sweep]                   # cartesian product: every combination of these --set values
//   "pass.0.divisor" = [2, 4, 8]
//   "pass.1.target_recall" = [0.95, 0.99]
//
//   [[run]]                   # explicit runs, added after the product; keys as --set takes
//   "pass.0.divisor" = 16     # them, plus an optional config = "other.toml"
//
//   [[baseline]]              # reference points, one per model: a config, or none for the
//   name = "int8"             # dense model as read
//   config = "../int8.toml"
//
// Every run (model x setting) is validated against its config before anything runs: an unknown
// key or a value the config rejects is a UsageError naming the sweep file's line. A run's id is
// the hash of what determines its results (the model's content, the resolved config and the
// evaluation settings), so an unchanged run keeps its id and its finished outputs.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compress/pipeline/pass_registry.h"

namespace rwkvlite::cli {

struct SweepEval {
  std::string text;                // "" : the bundled text's held-out range
  std::optional<uint64_t> offset;  // unset: 0 for `text`, the held-out start for the bundled text
  uint64_t bytes = 20000;          // 0: to the end
  bool interleave_zeros = false;
  nlohmann::ordered_json to_json() const;
};

// One --set assignment of a run, as the sweep file gave it.
struct SweepParam {
  std::string key;
  std::string value;  // display form: 4, 0.95, i8
  std::string toml;   // as passed to --set: 4, 0.95, "i8"
  std::string origin; // "<sweep file>:<line>" of the value
};

struct SweepRun {
  std::string id;           // 16 hex digits
  std::string model;        // path as resolved
  std::string model_xxh64;
  std::string baseline;     // the [[baseline]] name, "" for swept runs
  std::string config_path;  // "" : the dense model as read (a baseline without config)
  std::vector<SweepParam> params;
  std::string origin;       // "<sweep file>:<line>" the setting came from
  nlohmann::ordered_json resolved;  // the run's resolved config (null without config)
};

struct SweepSpec {
  std::string path;                     // the sweep file
  std::vector<std::string> swept_keys;  // every key any run sets, in first-seen order
  SweepEval eval;
  std::vector<SweepRun> runs;           // per model: baselines, then the product, then [[run]]s
};

// Reads, expands and validates a sweep file (every problem a UsageError with file:line).
SweepSpec load_sweep(const std::string& path, const PassRegistry& passes);

// The run's settings as "key=value;key=value" (display forms), "" for none.
std::string params_text(const SweepRun& run);

}  // namespace rwkvlite::cli
