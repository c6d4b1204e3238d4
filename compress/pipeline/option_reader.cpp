#include "compress/pipeline/option_reader.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <sstream>

#include "compress/pipeline/did_you_mean.h"
#include "compress/pipeline/tensor_selector.h"
#include "compress/pipeline/toml_limits.h"
#include "runtime/core/error.h"

namespace rwkvlite {

const char* const kTopLevel = "the top level";

const char* node_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "nothing";
  }
}

std::string position_suffix(const toml::source_region& r) {
  if (!r.begin) return "";
  return ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

// "file:line:col" of a node; nodes made by --set have no position: then the enclosing
// table's position (when it has one) and the argument.
std::string node_location(const toml::node& node, const toml::node* enclosing, const ConfigSources& src) {
  auto origin = src.set_origins.find(&node);
  if (origin != src.set_origins.end()) {
    const std::string where = enclosing ? position_suffix(enclosing->source()) : "";
    return src.file + where + ": --set '" + origin->second + "'";
  }
  if (node.source().begin) return src.file + position_suffix(node.source());
  if (enclosing) return src.file + position_suffix(enclosing->source());
  return src.file;
}

// Records every node under `node` (the node included) as made by this --set argument.
void mark_set_origin(const toml::node& node, const std::string& argument, ConfigSources& src) {
  src.set_origins[&node] = argument;
  if (auto t = node.as_table()) {
    for (auto&& [k, v] : *t) mark_set_origin(v, argument, src);
  } else if (auto a = node.as_array()) {
    for (auto&& v : *a) mark_set_origin(v, argument, src);
  }
}

namespace {
std::string format_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}






// Value conversions for OptionReader::get<T>; false on a type mismatch.
bool convert(const toml::node& n, bool& out) {
  if (auto v = n.as_boolean()) return out = v->get(), true;
  return false;
}
bool convert(const toml::node& n, int64_t& out) {
  if (auto v = n.as_integer()) return out = v->get(), true;
  return false;
}
bool convert(const toml::node& n, double& out) {
  // Integers are accepted where a float is expected: "damping = 1" means 1.0.
  if (auto v = n.as_floating_point()) return out = v->get(), true;
  if (auto v = n.as_integer()) return out = static_cast<double>(v->get()), true;
  return false;
}
bool convert(const toml::node& n, std::string& out) {
  if (auto v = n.as_string()) return out = v->get(), true;
  return false;
}

template <typename T>
const char* expected_name() {
  if constexpr (std::is_same_v<T, bool>) return "a boolean (true or false)";
  if constexpr (std::is_same_v<T, int> || std::is_same_v<T, int64_t>) return "an integer";
  if constexpr (std::is_same_v<T, double>) return "a number";
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  if constexpr (std::is_same_v<T, std::vector<std::string>>) return "an array of strings";
  return "?";
}

}  // namespace

OptionReader::OptionReader(const toml::table& table, std::string where, std::shared_ptr<const ConfigSources> sources)
    : table_(&table), where_(std::move(where)), sources_(std::move(sources)) {}

const toml::node* OptionReader::consume(std::string_view key) {
  known_.emplace(key);
  consumed_.emplace(key);
  return table_->get(key);
}

std::string OptionReader::require_path(std::string_view key) {
  const std::string given = require<std::string>(key);
  if (given.empty()) fail(key, "'" + std::string(key) + "' must be a file path, not empty");
  const std::filesystem::path p(given);
  return (p.is_absolute() ? p : std::filesystem::path(sources_->base_dir) / p).lexically_normal().string();
}

bool OptionReader::has(std::string_view key) {
  known_.emplace(key);
  return table_->get(key) != nullptr;
}

std::string OptionReader::scope() const { return where_ == kTopLevel ? "at the top level" : "in " + where_; }

void OptionReader::record(std::string_view key, nlohmann::ordered_json value) {
  resolved_[std::string(key)] = std::move(value);
}

std::string OptionReader::table_location() const {
  return node_location(*table_, nullptr, *sources_);
}

std::string OptionReader::location(std::string_view key) const {
  auto it = table_->find(key);
  if (it == table_->end()) return table_location();
  const toml::node& value = it->second;
  if (sources_->set_origins.count(&value) == 0 && !value.source().begin && it->first.source().begin) {
    return sources_->file + position_suffix(it->first.source());
  }
  return node_location(value, table_, *sources_);
}

void OptionReader::fail(std::string_view key, const std::string& message) const {
  throw UsageError(location(key) + ": " + message);
}

void OptionReader::fail_missing(std::string_view key, const std::string& what) const {
  // A present but unread key close to the missing one is most likely it, misspelt.
  std::string hint;
  for (auto&& [k, v] : *table_) {
    if (consumed_.count(k.str()) == 0 && closest_match(k.str(), {std::string(key)}) == key) {
      hint = "; found '" + std::string(k.str()) + "' (" + location(k.str()) + "), did you mean '" + std::string(key) + "'?";
      break;
    }
  }
  throw UsageError(table_location() + ": " + where_ + " needs '" + std::string(key) + "'" + what + hint);
}

void OptionReader::type_error(std::string_view key, const toml::node& node, const char* expected) const {
  fail(key, "'" + std::string(key) + "' " + scope() + " must be " + expected + ", not " + node_type_name(node));
}

template <typename T>
std::optional<T> OptionReader::get_optional(std::string_view key) {
  const toml::node* node = consume(key);
  if (node == nullptr) return std::nullopt;
  T out{};
  if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    const toml::array* arr = node->as_array();
    if (arr == nullptr) type_error(key, *node, expected_name<T>());
    for (const toml::node& element : *arr) {
      std::string s;
      if (!convert(element, s)) {
        throw UsageError(node_location(element, table_, *sources_) + ": every element of '" + std::string(key) +
                         "' " + scope() + " must be a string, not " + node_type_name(element));
      }
      out.push_back(std::move(s));
    }
    record(key, out);
  } else if constexpr (std::is_same_v<T, int>) {
    int64_t wide = 0;
    if (!convert(*node, wide)) type_error(key, *node, expected_name<T>());
    if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
      fail(key, "'" + std::string(key) + "' " + scope() + " is out of range: " + std::to_string(wide));
    }
    out = static_cast<int>(wide);
    record(key, out);
  } else {
    if (!convert(*node, out)) type_error(key, *node, expected_name<T>());
    record(key, out);
  }
  return out;
}

template <typename T>
T OptionReader::get(std::string_view key, T default_value) {
  if (auto v = get_optional<T>(key)) return *v;
  record(key, default_value);
  return default_value;
}

template <typename T>
T OptionReader::require(std::string_view key) {
  if (auto v = get_optional<T>(key)) return *v;
  fail_missing(key, std::string(" (") + expected_name<T>() + ")");
}

#define RWKVLITE_INSTANTIATE_OPTION(T)                                           \
  template std::optional<T> OptionReader::get_optional<T>(std::string_view key); \
  template T OptionReader::get<T>(std::string_view key, T default_value);        \
  template T OptionReader::require<T>(std::string_view key);
RWKVLITE_INSTANTIATE_OPTION(bool)
RWKVLITE_INSTANTIATE_OPTION(int)
RWKVLITE_INSTANTIATE_OPTION(int64_t)
RWKVLITE_INSTANTIATE_OPTION(double)
RWKVLITE_INSTANTIATE_OPTION(std::string)
RWKVLITE_INSTANTIATE_OPTION(std::vector<std::string>)
#undef RWKVLITE_INSTANTIATE_OPTION

int64_t OptionReader::get_int(std::string_view key, int64_t default_value, int64_t min, int64_t max) {
  const int64_t v = get<int64_t>(key, default_value);
  if (v < min || v > max) {
    const std::string range = max == std::numeric_limits<int64_t>::max()
                                  ? ">= " + std::to_string(min)
                                  : "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    fail(key, "'" + std::string(key) + "' " + scope() + " must be " + range + ", got " + std::to_string(v));
  }
  return v;
}

double OptionReader::get_double(std::string_view key, double default_value, double min, double max) {
  const double v = get<double>(key, default_value);
  if (!(v >= min && v <= max)) {  // also rejects nan
    fail(key, "'" + std::string(key) + "' " + scope() + " must be in [" + format_number(min) + ", " +
                  format_number(max) + "], got " + format_number(v));
  }
  return v;
}

std::string OptionReader::get_choice(std::string_view key, const std::string& default_value,
                                     const std::vector<std::string>& choices) {
  const std::string v = get<std::string>(key, default_value);
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
    fail(key, "'" + std::string(key) + "' " + scope() + " must be one of " + join(choices, ", ") + ", not '" + v +
                  "'" + did_you_mean(v, choices));
  }
  return v;
}

std::vector<std::string> OptionReader::get_patterns(std::string_view key, const std::vector<std::string>& default_value) {
  const auto patterns = get<std::vector<std::string>>(key, default_value);
  const toml::node* node = table_->get(key);
  if (patterns.size() > kMaxPatternsPerList) {
    throw UsageError(location(key) + ": '" + std::string(key) + "' of " + where_ + " lists " +
                     std::to_string(patterns.size()) + " patterns, more than the limit of " +
                     std::to_string(kMaxPatternsPerList));
  }
  for (size_t i = 0; i < patterns.size(); ++i) {
    try {
      (void)TensorPattern::compile(patterns[i]);
    } catch (const UsageError& e) {
      // Point at the element itself when the pattern came from the file.
      const toml::node* element = node && node->as_array() ? node->as_array()->get(i) : nullptr;
      const std::string where = element ? node_location(*element, table_, *sources_) : location(key);
      throw UsageError(where + ": " + e.what() + " (in '" + std::string(key) + "' of " + where_ + ")");
    }
  }
  return patterns;
}

std::optional<OptionReader> OptionReader::get_table(std::string_view key, const std::string& where) {
  const toml::node* node = consume(key);
  if (node == nullptr) return std::nullopt;
  const toml::table* t = node->as_table();
  if (t == nullptr) type_error(key, *node, "a table");
  return OptionReader(*t, where, sources_);
}

std::vector<OptionReader> OptionReader::get_tables(std::string_view key,
                                                   const std::function<std::string(size_t)>& describe) {
  std::vector<OptionReader> out;
  const toml::node* node = consume(key);
  if (node == nullptr) return out;
  const toml::array* arr = node->as_array();
  if (arr == nullptr && node->is_table()) {
    fail(key, "'" + std::string(key) + "' " + scope() + " must be an array of tables: write [[" + std::string(key) +
                  "]], not [" + std::string(key) + "]");
  }
  if (arr == nullptr) type_error(key, *node, "an array of tables");
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& element = *arr->get(i);
    const toml::table* t = element.as_table();
    if (t == nullptr) {
      throw UsageError(node_location(element, table_, *sources_) + ": " + describe(i) + " must be a table, not " +
                       node_type_name(element));
    }
    out.emplace_back(*t, describe(i), sources_);
  }
  return out;
}

void OptionReader::finish() const {
  struct Unknown {
    toml::source_position pos;
    std::string text;
  };
  std::vector<Unknown> unknown;
  const std::vector<std::string> known(known_.begin(), known_.end());
  for (auto&& [k, v] : *table_) {
    if (consumed_.count(k.str())) continue;
    const std::string key(k.str());
    // The key's own position (where the typo is), unless --set made it.
    const bool from_file = k.source().begin && sources_->set_origins.count(&v) == 0;
    const std::string where = from_file ? sources_->file + position_suffix(k.source()) : location(key);
    unknown.push_back({k.source().begin ? k.source().begin : v.source().begin,
                       where + ": unknown key '" + key + "' " + scope() + did_you_mean(key, known)});
  }
  if (unknown.empty()) return;
  // File order, so the first line is the first problem in the file.
  std::stable_sort(unknown.begin(), unknown.end(), [](const Unknown& a, const Unknown& b) { return a.pos < b.pos; });
  std::vector<std::string> lines;
  for (const auto& u : unknown) lines.push_back(u.text);
  throw UsageError(join(lines, "\n"));
}

}  // namespace rwkvlite
