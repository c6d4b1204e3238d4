#include "pipeline/config.h"

#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "passes/lowrank_pass.h"
#include "passes/quantize_pass.h"
#include "pipeline/tensor_selector.h"

namespace rwkvlite {

// The built-in passes register themselves from their own .cpp; naming their registrars here
// makes the linker keep those object files when rwkvlite_compress is a static library (it
// drops members nothing references, static initialisers included). Passes added later need
// the library linked whole-archive instead (see PassTypeRegistration).
// External linkage, so the compiler cannot drop the array and with it the references.
extern const void* const kBuiltinPassRegistrations[];
const void* const kBuiltinPassRegistrations[] = {&kLowRankPassRegistration, &kQuantizePassRegistration};

namespace {

// How messages name the document root.
const char* const kTopLevel = "the top level";

std::string format_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

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

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string best = closest_match(word, candidates);
  return best.empty() ? "" : "; did you mean '" + best + "'?";
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

// Records every node under `node` (the node included) as made by this --set argument.
void mark_set_origin(const toml::node& node, const std::string& argument, ConfigSources& src) {
  src.set_origins[&node] = argument;
  if (auto t = node.as_table()) {
    for (auto&& [k, v] : *t) mark_set_origin(v, argument, src);
  } else if (auto a = node.as_array()) {
    for (auto&& v : *a) mark_set_origin(v, argument, src);
  }
}

}  // namespace

// ---- OptionReader -------------------------------------------------------------------------

OptionReader::OptionReader(const toml::table& table, std::string where, std::shared_ptr<const ConfigSources> sources)
    : table_(&table), where_(std::move(where)), sources_(std::move(sources)) {}

const toml::node* OptionReader::consume(std::string_view key) {
  known_.emplace(key);
  consumed_.emplace(key);
  return table_->get(key);
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

// ---- Pass registry ------------------------------------------------------------------------

namespace {
std::map<std::string, PassFactory>& pass_registry() {
  static std::map<std::string, PassFactory> registry;  // built on first use: safe from static initialisers
  return registry;
}
}  // namespace

void register_pass_type(const std::string& type, PassFactory factory) {
  auto& reg = pass_registry();
  if (reg.count(type)) throw Error("pass type '" + type + "' is registered twice", kExitInternal);
  reg.emplace(type, std::move(factory));
}

std::vector<std::string> registered_pass_types() {
  std::vector<std::string> out;
  for (const auto& [name, f] : pass_registry()) out.push_back(name);
  return out;
}

PassTypeRegistration::PassTypeRegistration(const std::string& type, PassFactory factory) {
  register_pass_type(type, std::move(factory));
}

// ---- Overrides ----------------------------------------------------------------------------

namespace {

bool is_index(const std::string& s) {
  return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// A TOML value from override text: what `v = <text>` parses to, or the text as a string.
std::unique_ptr<toml::node> parse_override_value(const std::string& text) {
  try {
    toml::table doc = toml::parse("v = " + text);
    // Exactly one key: text like "1\nother = 2" is not one value, take it literally.
    if (doc.size() == 1) {
      if (toml::node* n = doc.get("v")) {
        std::unique_ptr<toml::node> out;
        n->visit([&](auto&& v) { out = std::make_unique<std::decay_t<decltype(v)>>(v); });
        return out;
      }
    }
  } catch (const toml::parse_error&) {
  }
  return std::make_unique<toml::value<std::string>>(text);
}

}  // namespace

void apply_override(toml::table& root, const std::string& assignment, ConfigSources& sources) {
  const size_t eq = assignment.find('=');
  auto bad = [&](const toml::node* near, const std::string& message) -> UsageError {
    const std::string where = near ? position_suffix(near->source()) : "";
    return UsageError(sources.file + where + ": --set '" + assignment + "': " + message);
  };
  if (eq == std::string::npos || eq == 0) throw bad(nullptr, "expected key=value, e.g. pass.0.divisor=4");
  const std::string path = assignment.substr(0, eq);
  std::vector<std::string> segments;
  {
    std::string seg;
    std::istringstream in(path);
    while (std::getline(in, seg, '.')) segments.push_back(seg);
    if (path.back() == '.') segments.push_back("");
  }
  for (const auto& s : segments) {
    if (s.empty()) throw bad(nullptr, "empty segment in the key '" + path + "'");
  }
  std::unique_ptr<toml::node> value = parse_override_value(assignment.substr(eq + 1));

  toml::node* current = &root;
  std::string walked;  // the path so far, for messages
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& seg = segments[i];
    const bool last = i + 1 == segments.size();
    const std::string here = walked.empty() ? seg : walked + "." + seg;
    if (toml::array* arr = current->as_array()) {
      if (!is_index(seg)) throw bad(arr, "'" + walked + "' is an array; expected an index, not '" + seg + "'");
      const size_t index = std::stoul(seg);
      if (index >= arr->size()) {
        throw bad(arr, "index " + seg + " is out of range: '" + walked + "' has " + std::to_string(arr->size()) +
                           (arr->size() == 1 ? " entry" : " entries"));
      }
      if (last) {
        value->visit([&](auto&& v) { arr->replace(arr->cbegin() + static_cast<std::ptrdiff_t>(index), std::move(v)); });
        mark_set_origin(*arr->get(index), assignment, sources);
        return;
      }
      current = arr->get(index);
    } else if (toml::table* tbl = current->as_table()) {
      if (is_index(seg)) {
        throw bad(tbl, "'" + (walked.empty() ? std::string("the top level") : walked) +
                           "' is a table; expected a key, not the index " + seg);
      }
      if (last) {
        // A new key is allowed (a default made explicit); the validator checks its name.
        value->visit([&](auto&& v) { tbl->insert_or_assign(seg, std::move(v)); });
        mark_set_origin(*tbl->get(seg), assignment, sources);
        return;
      }
      toml::node* child = tbl->get(seg);
      if (child == nullptr) {
        // A whole missing section (e.g. [calibration] absent from the file) may be created;
        // arrays (like [[pass]]) cannot be grown this way, which the next segment reports.
        tbl->insert(seg, toml::table{});
        child = tbl->get(seg);
        mark_set_origin(*child, assignment, sources);
      }
      current = child;
    } else {
      throw bad(nullptr, "'" + walked + "' is " + node_type_name(*current) + ", which has no '" + seg + "'");
    }
    walked = here;
  }
}

// ---- Pipeline config ----------------------------------------------------------------------

bool PipelineConfig::needs_calibration() const {
  for (const auto& p : passes) {
    if (p.pass && p.pass->needs_calibration()) return true;
  }
  return false;
}

namespace {

CalibrationConfig read_calibration(OptionReader& r, const std::string& base_dir) {
  CalibrationConfig c;
  c.text = r.get<std::string>("text", c.text);
  if (c.text.empty()) r.fail("text", "'text' in [calibration] must be \"bundled\" or a file path, not empty");
  c.offset = r.get_int("offset", c.offset, 0, std::numeric_limits<int64_t>::max());
  c.bytes = r.get_int("bytes", c.bytes, 1, std::numeric_limits<int64_t>::max());
  c.seed = static_cast<uint64_t>(r.get_int("seed", static_cast<int64_t>(c.seed), 0, std::numeric_limits<int64_t>::max()));
  c.samples = r.get_int("samples", c.samples, 1, int64_t{1} << 24);
  c.interleave_zeros = r.get<bool>("interleave_zeros", c.interleave_zeros);
  if (c.text == "bundled") {
    c.text_path = c.text;
  } else {
    std::filesystem::path p(c.text);
    c.text_path = (p.is_absolute() ? p : std::filesystem::path(base_dir) / p).lexically_normal().string();
  }
  return c;
}

}  // namespace

PipelineConfig parse_pipeline_config(const std::string& toml_text, const std::string& source_name,
                                     const std::vector<std::string>& overrides, const std::string& base_dir) {
  auto sources = std::make_shared<ConfigSources>();
  sources->file = source_name;

  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    throw UsageError(source_name + position_suffix(e.source()) + ": invalid TOML: " + std::string(e.description()));
  }
  for (const auto& o : overrides) apply_override(root, o, *sources);

  PipelineConfig config;
  OptionReader top(root, kTopLevel, sources);
  static const toml::table kEmpty;
  std::optional<OptionReader> calibration = top.get_table("calibration", "[calibration]");
  OptionReader calibration_reader = calibration ? *calibration : OptionReader(kEmpty, "[calibration]", sources);
  std::vector<OptionReader> pass_readers =
      top.get_tables("pass", [](size_t i) { return "[[pass]] #" + std::to_string(i + 1); });
  top.finish();

  config.calibration = read_calibration(calibration_reader, base_dir);
  calibration_reader.finish();

  const std::vector<std::string> types = registered_pass_types();
  nlohmann::ordered_json passes_json = nlohmann::ordered_json::array();
  for (size_t i = 0; i < pass_readers.size(); ++i) {
    OptionReader& r = pass_readers[i];
    PassSpec spec;
    spec.location = r.table_location();
    spec.type = r.require<std::string>("type");
    auto& registry = pass_registry();
    auto factory = registry.find(spec.type);
    if (factory == registry.end()) {
      r.fail("type", "unknown pass type '" + spec.type + "' in " + r.where() + "; known types: " + join(types, ", ") +
                         did_you_mean(spec.type, types));
    }
    r.set_where(r.where() + " (" + spec.type + ")");
    spec.pass = factory->second(r);
    r.finish();
    spec.options = r.resolved();
    passes_json.push_back(spec.options);
    config.passes.push_back(std::move(spec));
  }

  config.resolved = nlohmann::ordered_json::object();
  config.resolved["calibration"] = calibration_reader.resolved();
  config.resolved["passes"] = std::move(passes_json);
  config.hash = config_hash(config.resolved);
  return config;
}

PipelineConfig load_pipeline_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read config file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw UsageError("cannot read config file '" + path + "'");
  std::string base = std::filesystem::path(path).parent_path().string();
  if (base.empty()) base = ".";
  return parse_pipeline_config(text.str(), path, overrides, base);
}

std::string config_hash(const nlohmann::ordered_json& resolved) {
  const std::string text = resolved.dump();
  const unsigned long long h = XXH64(text.data(), text.size(), 0);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", h);
  return hex;
}

// ---- Suggestions --------------------------------------------------------------------------

size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: insertions, deletions, substitutions and adjacent
  // transpositions ("rnak" -> "rank") each cost 1.
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  // Close enough to be a typo: up to a third of the word's length, at least 1, at most 3.
  const size_t limit = std::clamp<size_t>(word.size() / 3, 1, 3);
  std::string best;
  size_t best_d = limit + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

}  // namespace rwkvlite
