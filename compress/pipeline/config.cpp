#include "compress/pipeline/config.h"

#include <xxhash.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "compress/pipeline/config_override.h"
#include "compress/pipeline/did_you_mean.h"
#include "compress/pipeline/option_reader.h"
#include "compress/pipeline/toml_limits.h"
#include "runtime/core/error.h"

namespace rwkvlite {

bool PipelineConfig::needs_calibration() const {
  for (const auto& p : passes) {
    if (p.pass && p.pass->needs_calibration()) return true;
  }
  return false;
}

nlohmann::ordered_json PassSpec::settings() const {
  nlohmann::ordered_json out = options;
  out.erase("type");
  return out;
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
                                     const PassRegistry& registry, const std::vector<std::string>& overrides,
                                     const std::string& base_dir) {
  auto sources = std::make_shared<ConfigSources>();
  sources->file = source_name;
  sources->base_dir = base_dir;

  check_toml_limits(toml_text, source_name);
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
  if (pass_readers.size() > kMaxPasses) {
    throw UsageError(source_name + ": " + std::to_string(pass_readers.size()) + " [[pass]] tables exceed the limit of " +
                     std::to_string(kMaxPasses));
  }

  config.calibration = read_calibration(calibration_reader, base_dir);
  calibration_reader.finish();

  const std::vector<std::string> types = registry.types();
  nlohmann::ordered_json passes_json = nlohmann::ordered_json::array();
  for (size_t i = 0; i < pass_readers.size(); ++i) {
    OptionReader& r = pass_readers[i];
    PassSpec spec;
    spec.location = r.table_location();
    spec.type = r.require<std::string>("type");
    const PassFactory* factory = registry.find(spec.type);
    if (factory == nullptr) {
      r.fail("type", "unknown pass type '" + spec.type + "' in " + r.where() + "; known types: " + join(types, ", ") +
                         did_you_mean(spec.type, types));
    }
    r.set_where(r.where() + " (" + spec.type + ")");
    spec.pass = (*factory)(r);
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

PipelineConfig load_pipeline_config(const std::string& path, const PassRegistry& registry,
                                    const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw UsageError("config file '" + path + "' is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read config file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw UsageError("cannot read config file '" + path + "'");
  std::string base = std::filesystem::path(path).parent_path().string();
  if (base.empty()) base = ".";
  return parse_pipeline_config(text.str(), path, registry, overrides, base);
}


std::string config_hash(const nlohmann::ordered_json& resolved) {
  const std::string text = resolved.dump();
  const unsigned long long h = XXH64(text.data(), text.size(), 0);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", h);
  return hex;
}

}  // namespace rwkvlite
