#include "compress/pipeline/config_override.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "compress/pipeline/toml_limits.h"
#include "runtime/core/error.h"

namespace rwkvlite {

namespace {

bool is_index(const std::string& s) {
  return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// A TOML value from override text: what `v = <text>` parses to, or the text as a string.
std::unique_ptr<toml::node> parse_override_value(const std::string& text) {
  try {
    check_toml_limits("v = " + text, "--set value");
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

}  // namespace rwkvlite
