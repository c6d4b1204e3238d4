// The TOML configuration of the compression pipeline: parsing, strict validation, --set
// overrides, the resolved JSON form and its hash.
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
//   type = "lowrank"           # a registered pass type; see registered_pass_types()
//   ...                        # the type's own keys (below)
//
// Tensor patterns (targets / ignore) everywhere: globs over dot-separated names where '*'
// matches inside one segment and '**' (a whole segment) any number of segments, or
// "re:<ECMAScript regex>" matching the whole name; see pipeline/tensor_selector.h.
//
//   type = "lowrank"           # SVD factorisation W [out,in] ~= lr_b [out,r] · lr_a [r,in]
//   targets = ["blocks.*.att.receptance.weight", "blocks.*.att.key.weight",
//              "blocks.*.att.value.weight", "blocks.*.att.gate.weight"]   # default (RWKV-Lite)
//   ignore = []                # default
//   # the rank rule: at most one of the next four keys; none means divisor = 8
//   rank = 64                  # fixed rank for every target                      (>= 1)
//   divisor = 8                # r = min(out, in) / divisor                        (>= 1)
//   energy = 0.9               # smallest r keeping this fraction of sum(S²)       (0, 1]
//                              # (S of W, or of W·L when activation_aware)
//   budget = 0.25              # parameters of all targets after / before, shared  (0, 1]
//                              # greedily by error reduction per parameter; the error is
//                              # the output error when calibration is present, else the
//                              # weight error, each relative to the matrix's own scale
//   activation_aware = false   # whiten with the calibration E[x xᵀ] (SVD-LLM); needs calibration
//   damping = 0.01             # λ: factor C + λ·mean(diag C)·I                   [0, 1]
//   svd = "auto"               # auto | exact (BDCSVD) | partial (Spectra)
//   # any rank whose factors would not be smaller than the dense matrix keeps it dense.
//
//   type = "quantize"          # sets each tensor's storage encoding; values are untouched here
//   rules = [                  # first rule whose targets match (and ignore does not) wins;
//     { targets = ["**.lr_a", "**.lr_b"], encoding = "i8" },   # tensors no rule matches keep
//     { targets = ["head.weight"], ignore = [], encoding = "f16" },  # their encoding
//   ]                          # encodings: f32 f16 bf16 i8 i4g32 i4g64 i4g128
//
//   type = "neuron_major"      # channel-mix value stored neuron by neuron for sparse FFN:
//                              # blocks.{i}.ffn.value.weight [D,F] -> value.neurons [F,D]
//                              # (exact transpose, same encoding); key and value.neurons
//                              # become row-addressable (docs/compact-format.md §6)
//   ignore = []                # layers whose ffn key/value weight name matches stay as they are
//                              # (e.g. ["blocks.0.**"])
//
//   type = "sparsity_predictor"  # needs calibration and a LibTorch build; per channel-mix layer
//                              # writes ffn.predictor.down [r,D], ffn.predictor.up [F,r] (f32),
//                              # ffn.key.sign (b1 copy of the key) and metadata "sparse_ffn"
//   rank = 64                  # hidden width r of the MLP D -> r -> F             [1, 65536]
//   epochs = 10                # passes over the training samples                  (>= 1)
//   batch_size = 256           # samples per Adam step                             (>= 1)
//   learning_rate = 0.002      # Adam                                              (0, 1]
//   holdout_fraction = 0.1     # last share of the samples (by text position), not (0, 0.9]
//                              # trained on; mlp_threshold is tuned on it
//   target_recall = 0.99       # share of truly active neurons the union must find (0, 1]
//                              # on the held-out samples (largest threshold that does)
//   sign_top_fraction = 0.05   # sign_top_k = round(this · F) neurons by the 1-bit key [0, 1]
//   neuron_cache_fraction = 0.5  # recorded for the runtime: neurons kept in memory  [0, 1]
//   ignore = []                # layers whose ffn key weight name matches get no predictor
//
//   type = "fold_embedding"    # emb.folded = ln0(emb.weight) per token, replaces emb.weight
//   cache_rows = 256           # embedding rows the runtime keeps; metadata      (>= 0)
//                              # "embedding_cache_rows"
//
//   type = "cluster_head"      # two-level head (needs calibration and LibTorch): k-means
//                              # clusters of the vocabulary, head rows grouped by cluster
//                              # (head.clustered ...), a trained k x D cluster-level head
//   k = 16                     # clusters                                        [1, V]
//   source = "head"            # rows to cluster: "head" | "embedding"
//   pca_dims = 0               # cluster a PCA projection of this width; 0 = off  [0, D]
//   max_iterations = 100       # Lloyd iterations                                (>= 1)
//   p = 0.95                   # runtime keeps clusters until this much predicted (0, 1]
//                              # probability
//   min_clusters = 1           # runtime keeps at least ...                      [1, k]
//   max_clusters = 16          # ... and at most this many clusters (default k)  [min, k]
//   epochs = 30                # cluster-head training epochs (Adam, KL loss)    [0, 10000]
//   learning_rate = 0.003      #                                                 (0, 1]
//   holdout_fraction = 0.1     # last fraction of calibration samples held out   [0, 0.9]
//                              # for the report (KL, top-cluster accuracy, ...)
//
// Every unknown key is an error naming its file:line:column and the closest known key; so
// is a wrong type, an out-of-range value, an unknown pass type or encoding, a malformed
// pattern, and malformed TOML. All are UsageError (exit code 2).
//
// ---- Overrides ----------------------------------------------------------------------------
//
// --set key=value, applied to the parsed TOML before validation. The key is a dotted path;
// numeric segments index arrays: calibration.bytes=50000, pass.0.divisor=4,
// pass.1.rules.0.encoding=f16. The value is parsed as a TOML value (4, 0.5, true,
// ["a", "b"], "text") and taken as a plain string when it is not one (f16, bundled). A path
// may add a key that the file leaves at its default; the added key is then validated like
// any other, so a typo is reported as an unknown key citing the --set. Indexing past an
// array's end, or into a value that is not a table or array, is an error at once.
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
#include <toml++/toml.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/pass.h"

namespace rwkvlite {

// Where values came from: the file name for messages, and which nodes --set created.
struct ConfigSources {
  std::string file;                                  // as given (messages show it as given)
  std::map<const toml::node*, std::string> set_origins;  // node -> the "--set k=v" argument
};

// Reads one table's keys for whoever owns it (a pass factory, the calibration section, a
// quantize rule), marking each key it is asked about as known and each key it reads as
// consumed. finish() then rejects every key nobody read, suggesting the closest known one.
// Every error is a UsageError starting "<file>:<line>:<column>: ".
class OptionReader {
 public:
  OptionReader(const toml::table& table, std::string where, std::shared_ptr<const ConfigSources> sources);

  // The value of `key`, or `default_value` when absent; UsageError when present with the
  // wrong type. T is one of bool, int, int64_t, double (integers accepted), std::string,
  // std::vector<std::string>. The value read (or the default) is recorded in resolved().
  template <typename T>
  T get(std::string_view key, T default_value);
  // Like get, but absent stays absent (and is not recorded).
  template <typename T>
  std::optional<T> get_optional(std::string_view key);
  // Like get, but absent is an error.
  template <typename T>
  T require(std::string_view key);

  // Numbers within [min, max] (inclusive).
  int64_t get_int(std::string_view key, int64_t default_value, int64_t min, int64_t max);
  double get_double(std::string_view key, double default_value, double min, double max);
  // A string that must be one of `choices` (the message lists them and suggests the closest).
  std::string get_choice(std::string_view key, const std::string& default_value,
                         const std::vector<std::string>& choices);
  // A list of tensor patterns, each checked by TensorPattern::compile (errors point at the
  // offending element).
  std::vector<std::string> get_patterns(std::string_view key, const std::vector<std::string>& default_value);
  // A sub-table ([calibration]) or an array of tables ([[pass]], rules = [{...}, ...]); each
  // returned reader needs its own finish(). `describe(i)` names element i in messages.
  std::optional<OptionReader> get_table(std::string_view key, const std::string& where);
  std::vector<OptionReader> get_tables(std::string_view key, const std::function<std::string(size_t)>& describe);

  // Presence test; marks the key as known (for suggestions) without consuming it.
  bool has(std::string_view key);
  // Records a derived or default value in resolved() (e.g. a default that depends on other keys).
  void record(std::string_view key, nlohmann::ordered_json value);
  // Changes how messages name this table (e.g. once the pass type is known).
  void set_where(std::string where) { where_ = std::move(where); }
  const std::string& where() const { return where_; }

  // UsageError located at the key (its value, or its table when absent).
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  // "<where> needs '<key>'<what>", pointing out a present key that looks like a typo of it.
  [[noreturn]] void fail_missing(std::string_view key, const std::string& what) const;
  // "<file>:<line>:<column>" of the key's value (or of this table when absent), including the
  // --set argument for values that came from one.
  std::string location(std::string_view key) const;
  std::string table_location() const;

  // Rejects every key that was not consumed.
  void finish() const;
  const nlohmann::ordered_json& resolved() const { return resolved_; }

 private:
  const toml::node* consume(std::string_view key);
  std::string scope() const;  // "in <where>", or "at the top level"
  [[noreturn]] void type_error(std::string_view key, const toml::node& node, const char* expected) const;

  const toml::table* table_;
  std::string where_;
  std::shared_ptr<const ConfigSources> sources_;
  std::set<std::string, std::less<>> known_;
  std::set<std::string, std::less<>> consumed_;
  nlohmann::ordered_json resolved_ = nlohmann::ordered_json::object();
};

// ---- Pass registry ------------------------------------------------------------------------

// Builds a validated pass from its [[pass]] table (the reader has consumed "type"; the
// factory reads the rest and must throw UsageError via the reader for anything invalid).
using PassFactory = std::function<std::unique_ptr<Pass>(OptionReader&)>;

// Registers a pass type; Error (internal) when the name is already taken.
void register_pass_type(const std::string& type, PassFactory factory);
std::vector<std::string> registered_pass_types();  // sorted

// Registers at static-initialisation time: `static const PassTypeRegistration kReg("x", f);`
// in the pass's .cpp. NOTE: in a static library the linker drops object files nothing
// references, registrar included; link rwkvlite_compress whole-archive (or reference the
// pass) for a pass to be available. The built-in lowrank and quantize passes are referenced
// from config.cpp.
struct PassTypeRegistration {
  PassTypeRegistration(const std::string& type, PassFactory factory);
};

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
  nlohmann::ordered_json options;  // this pass's part of `resolved`
  std::unique_ptr<Pass> pass;
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
PipelineConfig load_pipeline_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The same from text; `source_name` is used in messages and `base_dir` resolves relative paths.
PipelineConfig parse_pipeline_config(const std::string& toml_text, const std::string& source_name,
                                     const std::vector<std::string>& overrides = {},
                                     const std::string& base_dir = ".");

// Applies one "key=value" override to a parsed document (exposed for tests). Nodes it
// creates are recorded in `sources` so later messages can cite the argument.
void apply_override(toml::table& root, const std::string& assignment, ConfigSources& sources);

// 16 lowercase hex digits of XXH64 over resolved.dump(): stable across runs and platforms.
std::string config_hash(const nlohmann::ordered_json& resolved);

// Levenshtein distance, and the closest candidate within a small distance (empty if none):
// used for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace rwkvlite
