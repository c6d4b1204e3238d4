// Strict reading of one TOML table of a compression config: typed getters that record the
// resolved value, locations as file:line:column (or the --set argument), and rejection of
// every key nobody read, with a "did you mean". Used by the config loader, by each pass's
// Options::read, and by the calibration section.
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

namespace rwkvlite {

// Where values came from: the file name for messages, and which nodes --set created.
struct ConfigSources {
  std::string file;                                  // as given (messages show it as given)
  std::string base_dir;                              // what relative paths in it are relative to
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

  // A file path: relative paths are taken relative to the config file's directory (as
  // [calibration] text is). UsageError when absent or empty.
  std::string require_path(std::string_view key);

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

// ---- Locations of TOML nodes in messages (shared with config_override) ----------------------

extern const char* const kTopLevel;  // how messages name the document root
const char* node_type_name(const toml::node& n);  // "a string", "an array", ...
std::string position_suffix(const toml::source_region& r);  // ":line:column", or "" when unknown
// "file:line:col" of a node; nodes made by --set have no position: then the enclosing
// table's position (when it has one) and the argument.
std::string node_location(const toml::node& node, const toml::node* enclosing, const ConfigSources& src);
// Records every node under `node` (the node included) as made by this --set argument.
void mark_set_origin(const toml::node& node, const std::string& argument, ConfigSources& src);

}  // namespace rwkvlite
