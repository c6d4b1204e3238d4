#include "tools/rwkvlite/sweep_spec.h"

#include <toml++/toml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "compress/pipeline/config.h"
#include "compress/pipeline/did_you_mean.h"
#include "compress/pipeline/pipeline.h"
#include "compress/pipeline/toml_limits.h"
#include "runtime/core/error.h"

namespace rwkvlite::cli {
namespace {

namespace fs = std::filesystem;

// Messages start "<file>:<line>: " like the config loader's.
struct Locator {
  std::string file;
  std::string at(const toml::node& node) const {
    return file + ":" + std::to_string(node.source().begin.line);
  }
  [[noreturn]] void fail(const toml::node& node, const std::string& message) const {
    throw UsageError(at(node) + ": " + message);
  }
};

std::string read_file_text(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read " + what + " '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string resolve_path(const std::string& base_dir, const std::string& p) {
  const fs::path path(p);
  return (path.is_absolute() ? path : fs::path(base_dir) / path).lexically_normal().string();
}

const toml::node& require_node(const Locator& loc, const toml::table& t, const toml::node& owner,
                               const std::string& key, const std::string& where) {
  const toml::node* n = t.get(key);
  if (n == nullptr) loc.fail(owner, where + " needs '" + key + "'");
  return *n;
}

std::string as_string(const Locator& loc, const toml::node& n, const std::string& key) {
  const auto* s = n.as_string();
  if (s == nullptr) loc.fail(n, "'" + key + "' must be a string");
  return s->get();
}

void reject_unknown_keys(const Locator& loc, const toml::table& t, const std::vector<std::string>& known,
                         const std::string& where) {
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      loc.fail(v, "unknown key '" + key + "' in " + where + did_you_mean(key, known));
    }
  }
}

// A swept TOML value as JSON: its --set form is then the JSON text, which TOML reads back
// as the same value (numbers in shortest round-trip form, strings double-quoted).
nlohmann::ordered_json json_of(const Locator& loc, const std::string& key, const toml::node& value) {
  if (const auto* i = value.as_integer()) return i->get();
  if (const auto* f = value.as_floating_point()) return f->get();
  if (const auto* b = value.as_boolean()) return b->get();
  if (const auto* s = value.as_string()) return s->get();
  if (const auto* a = value.as_array()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const toml::node& e : *a) out.push_back(json_of(loc, key, e));
    return out;
  }
  loc.fail(value, "'" + key + "': a swept value must be a number, string, boolean or array of them");
}

SweepParam param_of(const Locator& loc, const std::string& key, const toml::node& value) {
  const nlohmann::ordered_json j = json_of(loc, key, value);
  SweepParam p{key, j.is_string() ? j.get<std::string>() : j.dump(), j.dump(), loc.at(value)};
  if (p.value.find_first_of(";\n") != std::string::npos) {
    loc.fail(value, "'" + key + "': values may not contain ';' or line breaks (they are listed as key=value;...)");
  }
  return p;
}

// One setting of the product or an explicit [[run]]: its params and where it came from.
struct Setting {
  std::vector<SweepParam> params;
  std::string origin;
  std::string config_path;  // "" : the base config
};

std::vector<Setting> product_of(const Locator& loc, const toml::table& sweep) {
  std::vector<Setting> settings{Setting{{}, loc.at(sweep), ""}};
  for (const auto& [k, v] : sweep) {
    const std::string key(k.str());
    const toml::array* values = v.as_array();
    if (values == nullptr || values->empty()) {
      loc.fail(v, "'" + key + "' in [sweep] must be a non-empty array of values (one per run)");
    }
    std::vector<Setting> next;
    for (const Setting& s : settings) {
      for (const toml::node& value : *values) {
        Setting copy = s;
        copy.params.push_back(param_of(loc, key, value));
        next.push_back(std::move(copy));
      }
    }
    settings = std::move(next);
    if (settings.size() > 100000) loc.fail(v, "[sweep] expands to more than 100000 runs");
  }
  return settings;
}

Setting explicit_run(const Locator& loc, const toml::table& run, const std::string& base_dir) {
  Setting s{{}, loc.at(run), ""};
  for (const auto& [k, v] : run) {
    const std::string key(k.str());
    if (key == "config") {
      s.config_path = resolve_path(base_dir, as_string(loc, v, key));
    } else {
      s.params.push_back(param_of(loc, key, v));
    }
  }
  return s;
}

// Reads config files once per path and resolves a setting against one.
class ConfigResolver {
 public:
  explicit ConfigResolver(const PassRegistry& passes) : passes_(passes) {}

  nlohmann::ordered_json resolve(const std::string& config_path, const std::vector<SweepParam>& params,
                                 const std::string& origin) {
    auto it = texts_.find(config_path);
    if (it == texts_.end()) it = texts_.emplace(config_path, read_file_text(config_path, "config file")).first;
    std::vector<std::string> overrides;
    for (const SweepParam& p : params) overrides.push_back(p.key + "=" + p.toml);
    std::string base = fs::path(config_path).parent_path().string();
    try {
      return parse_pipeline_config(it->second, config_path, passes_, overrides, base.empty() ? "." : base).resolved;
    } catch (const UsageError& e) {
      // Point at the swept value the loader's message cites, else at the run's table.
      const std::string message = e.what();
      std::string where = origin;
      for (const SweepParam& p : params) {
        if (message.find("--set '" + p.key + "=") != std::string::npos) where = p.origin;
      }
      throw UsageError(where + ": this run's config is invalid: " + message);
    }
  }

 private:
  const PassRegistry& passes_;
  std::map<std::string, std::string> texts_;
};

SweepEval read_eval(const Locator& loc, const toml::table* eval, const std::string& base_dir) {
  SweepEval e;
  if (eval == nullptr) return e;
  reject_unknown_keys(loc, *eval, {"text", "offset", "bytes", "interleave_zeros"}, "[eval]");
  auto non_negative = [&](const char* key) -> std::optional<uint64_t> {
    const toml::node* n = eval->get(key);
    if (n == nullptr) return std::nullopt;
    const auto* i = n->as_integer();
    if (i == nullptr || i->get() < 0) loc.fail(*n, std::string("'") + key + "' in [eval] must be an integer >= 0");
    return static_cast<uint64_t>(i->get());
  };
  if (const toml::node* t = eval->get("text")) e.text = resolve_path(base_dir, as_string(loc, *t, "text"));
  e.offset = non_negative("offset");
  if (auto b = non_negative("bytes")) e.bytes = *b;
  if (const toml::node* z = eval->get("interleave_zeros")) {
    if (!z->is_boolean()) loc.fail(*z, "'interleave_zeros' in [eval] must be true or false");
    e.interleave_zeros = z->as_boolean()->get();
  }
  return e;
}

std::string run_id_of(const SweepRun& run, const SweepEval& eval) {
  const nlohmann::ordered_json what = {{"model_xxh64", run.model_xxh64},
                                       {"baseline", run.baseline},
                                       {"config", run.resolved},
                                       {"eval", eval.to_json()}};
  return config_hash(what);
}

}  // namespace

nlohmann::ordered_json SweepEval::to_json() const {
  nlohmann::ordered_json j = {{"text", text.empty() ? "bundled" : text}};
  j["offset"] = offset ? nlohmann::ordered_json(*offset) : nlohmann::ordered_json(nullptr);
  j["bytes"] = bytes;
  j["interleave_zeros"] = interleave_zeros;
  return j;
}

std::string params_text(const SweepRun& run) {
  std::string out;
  for (const SweepParam& p : run.params) out += (out.empty() ? "" : ";") + p.key + "=" + p.value;
  return out;
}

SweepSpec load_sweep(const std::string& path, const PassRegistry& passes) {
  const std::string text = read_file_text(path, "sweep file");
  check_toml_limits(text, path);
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw UsageError(path + ":" + std::to_string(e.source().begin.line) + ": invalid TOML: " +
                     std::string(e.description()));
  }
  const Locator loc{path};
  std::string base_dir = fs::path(path).parent_path().string();
  if (base_dir.empty()) base_dir = ".";
  reject_unknown_keys(loc, root, {"base_config", "models", "eval", "sweep", "run", "baseline"}, "the sweep file");

  const toml::node& base_node = require_node(loc, root, root, "base_config", "a sweep file");
  const std::string base_config = resolve_path(base_dir, as_string(loc, base_node, "base_config"));

  const toml::node& models_node = require_node(loc, root, root, "models", "a sweep file");
  const toml::array* models = models_node.as_array();
  if (models == nullptr || models->empty()) loc.fail(models_node, "'models' must be a non-empty array of paths");

  SweepSpec spec;
  spec.path = path;
  spec.eval = read_eval(loc, root["eval"].as_table(), base_dir);
  if (root.contains("eval") && !root["eval"].is_table()) loc.fail(*root.get("eval"), "'eval' must be a table");

  std::vector<Setting> settings;
  if (const toml::node* sweep = root.get("sweep")) {
    if (!sweep->is_table()) loc.fail(*sweep, "'sweep' must be a table of key = [values]");
    settings = product_of(loc, *sweep->as_table());
  }
  if (const toml::node* runs = root.get("run")) {
    if (!runs->is_array_of_tables()) loc.fail(*runs, "'run' must be an array of tables ([[run]])");
    for (const toml::node& r : *runs->as_array()) settings.push_back(explicit_run(loc, *r.as_table(), base_dir));
  }
  if (settings.empty()) loc.fail(root, "the sweep file has neither a [sweep] table nor [[run]] entries");

  std::vector<Setting> baselines;
  std::vector<std::string> baseline_names;
  if (const toml::node* b = root.get("baseline")) {
    if (!b->is_array_of_tables()) loc.fail(*b, "'baseline' must be an array of tables ([[baseline]])");
    for (const toml::node& n : *b->as_array()) {
      const toml::table& t = *n.as_table();
      reject_unknown_keys(loc, t, {"name", "config"}, "[[baseline]]");
      const std::string name = as_string(loc, require_node(loc, t, n, "name", "[[baseline]]"), "name");
      if (name.empty() || std::find(baseline_names.begin(), baseline_names.end(), name) != baseline_names.end()) {
        loc.fail(n, "[[baseline]] names must be non-empty and distinct ('" + name + "')");
      }
      baseline_names.push_back(name);
      Setting s{{}, loc.at(n), ""};
      if (const toml::node* c = t.get("config")) s.config_path = resolve_path(base_dir, as_string(loc, *c, "config"));
      baselines.push_back(std::move(s));
    }
  }

  for (const Setting& s : settings) {
    for (const SweepParam& p : s.params) {
      if (std::find(spec.swept_keys.begin(), spec.swept_keys.end(), p.key) == spec.swept_keys.end()) {
        spec.swept_keys.push_back(p.key);
      }
    }
  }

  ConfigResolver resolver(passes);
  std::vector<std::string> seen_models;
  for (const toml::node& m : *models) {
    const std::string model = resolve_path(base_dir, as_string(loc, m, "models"));
    if (std::find(seen_models.begin(), seen_models.end(), model) != seen_models.end()) {
      loc.fail(m, "model '" + model + "' is listed twice");
    }
    seen_models.push_back(model);
    if (!fs::is_regular_file(model)) loc.fail(m, "model file '" + model + "' does not exist");
    const std::string xxh = file_xxh64(model);
    auto add = [&](const Setting& s, const std::string& baseline, const std::string& config_path) {
      SweepRun run;
      run.model = model;
      run.model_xxh64 = xxh;
      run.baseline = baseline;
      run.config_path = config_path;
      run.params = s.params;
      run.origin = s.origin;
      run.resolved = config_path.empty() ? nlohmann::ordered_json(nullptr) : resolver.resolve(config_path, s.params, s.origin);
      run.id = run_id_of(run, spec.eval);
      spec.runs.push_back(std::move(run));
    };
    for (size_t i = 0; i < baselines.size(); ++i) add(baselines[i], baseline_names[i], baselines[i].config_path);
    for (const Setting& s : settings) add(s, "", s.config_path.empty() ? base_config : s.config_path);
  }
  // Two settings that resolve alike (e.g. a [[run]] repeating a product point) are one run.
  std::vector<SweepRun> unique;
  for (SweepRun& r : spec.runs) {
    const bool dup = std::any_of(unique.begin(), unique.end(), [&](const SweepRun& u) { return u.id == r.id; });
    if (!dup) unique.push_back(std::move(r));
  }
  spec.runs = std::move(unique);
  return spec;
}

}  // namespace rwkvlite::cli
