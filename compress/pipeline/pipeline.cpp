#include "compress/pipeline/pipeline.h"

#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include "converters/model_io.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/core/resource_usage.h"
#include "runtime/core/version.h"
#include "runtime/core/progress.h"
#include "runtime/format/layout.h"
#include "compress/pipeline/calibration.h"
#include "compress/pipeline/calibration_cache.h"
#include "compress/pipeline/compact_export.h"
#include "compress/pipeline/config.h"
#include "compress/pipeline/stage_meter.h"

namespace rwkvlite {
namespace {

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string mib(int64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  return buf;
}

// Projections whose input statistics calibration records (layout::is_calibrated_projection).
std::set<std::string> calibrated_projections(const Model& model) {
  std::set<std::string> out;
  for (const auto& [name, t] : model.tensors) {
    if (layout::is_calibrated_projection(name)) out.insert(name);
  }
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// One report row as a log line, after llama.cpp's quantize log:
//   [ 3/24] blocks.0.att.key.weight - [256, 256], f32 -> f32, lowrank r=64 .. size = A -> B, rel_err=0.0123, 0.05 s
// The metric and the time appear only when the pass measured them.
std::string row_line(const PassReportRow& r, int64_t row_no, int64_t rows_total) {
  const int width = static_cast<int>(std::to_string(std::max<int64_t>(rows_total, row_no)).size());
  std::string line = rows_total > 0 ? fmt::format("[{:>{}}/{}] ", row_no, width, rows_total) : fmt::format("[{}] ", row_no);
  line += r.tensor;
  if (!r.shape.empty()) line += " - " + shape_text(r.shape);
  if (!r.encoding_before.empty() && !r.encoding_after.empty()) {
    line += ", " + r.encoding_before + " -> " + r.encoding_after;
  } else if (!r.encoding_after.empty()) {
    line += ", new " + r.encoding_after;
  }
  line += ", " + r.action + " .. size = " + mib(r.bytes_before) + " -> " + mib(r.bytes_after);
  if (r.value) line += fmt::format(", {}={:.4f}", r.metric, *r.value);
  if (r.seconds) line += fmt::format(", {:.2f} s", *r.seconds);
  return line;
}

// A report row in the JSON report: the metric under its own name ("rel_err": 0.01), and
// "seconds" only when measured.
nlohmann::ordered_json row_json(const std::string& pass, const PassReportRow& r) {
  nlohmann::ordered_json j = {{"pass", pass}, {"tensor", r.tensor}, {"shape", r.shape}, {"action", r.action},
                              {"bytes_before", r.bytes_before}, {"bytes_after", r.bytes_after}};
  if (!r.encoding_before.empty()) j["encoding_before"] = r.encoding_before;
  if (!r.encoding_after.empty()) j["encoding_after"] = r.encoding_after;
  if (r.value) j[r.metric] = *r.value;
  if (r.seconds) j["seconds"] = *r.seconds;
  j["extra"] = r.extra;
  return j;
}

nlohmann::ordered_json pass_records(const PipelineConfig& config) {
  nlohmann::ordered_json records = nlohmann::ordered_json::array();
  for (const PassSpec& spec : config.passes) records.push_back({{"type", spec.type}, {"settings", spec.settings()}});
  return records;
}

// What the file records about its inputs; `calibration` is null when no pass needs it.
nlohmann::ordered_json provenance_of(const CompressOptions& o, const std::string& model_xxh64,
                                     const PipelineConfig& config, const CalibrationText* calibration,
                                     int64_t n_calibration_tokens) {
  return {{"tool", "rwkvlite"},
          {"tool_version", RWKVLITE_VERSION},
          {"input_file", std::filesystem::path(o.model_path).filename().string()},
          {"input_xxh64", model_xxh64},
          {"calibration_text_xxh64", calibration ? calibration->xxh64 : std::string()},
          {"calibration_tokens", n_calibration_tokens},
          {"seed", config.calibration.seed},
          {"config_hash", config.hash}};
}

nlohmann::ordered_json file_metadata_of(const PipelineConfig& config, const nlohmann::ordered_json& provenance) {
  return {{"passes", pass_records(config)}, {"config", config.resolved}, {"provenance", provenance}};
}

// The config, the dense model and the passes planned on it: what both a dry run and a real
// run start from. Every pass is validated against the plan of the passes before it, so a
// config that cannot work fails here, before calibration.
struct Prepared {
  PipelineConfig config;
  Model model;
  std::string model_xxh64;  // file_xxh64 of the model file: provenance and the calibration cache key
  CompressedModel cm;
  CompressPlan plan;
  std::optional<CalibrationText> calibration_text;
  int64_t dense_fp32_bytes = 0;
};

CompressPlan plan_passes(const PipelineConfig& config, const CompressedModel& cm) {
  CompressPlan plan{cm.shapes_only(), {}, 0, {}};
  for (const PassSpec& spec : config.passes) {
    spec.pass->validate(plan.model);
    spec.pass->plan(plan);
  }
  return plan;
}

std::string report_path_of(const CompressOptions& o) {
  return o.report_path.empty() ? o.output_path + ".report.json" : o.report_path;
}

// Whether two paths name one file: the same path once normalised, or (when both exist) the same
// inode, which also catches hard links and symbolic links.
bool same_file(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec) && !ec) return true;
  return fs::exists(a, ec) && fs::exists(b, ec) && fs::equivalent(a, b, ec);
}

void refuse_unsafe_report_path(const CompressOptions& o) {
  const std::string report = report_path_of(o);
  if (same_file(report, o.model_path)) {
    throw UsageError("the report path '" + report + "' is the input model; choose another --report");
  }
  if (same_file(report, o.output_path)) {
    throw UsageError("the report path '" + report + "' is the output file; choose another --report");
  }
  // The report is an output like the compact file: an existing one needs --force.
  refuse_existing_output(report, o.force);
}

Prepared prepare(const CompressOptions& o, const PassRegistry& passes) {
  Prepared p;
  std::vector<std::string> overrides = o.overrides;
  if (o.seed) overrides.push_back("calibration.seed=" + std::to_string(*o.seed));
  p.config = o.config_text.empty() ? load_pipeline_config(o.config_path, passes, overrides)
                                   : parse_pipeline_config(o.config_text, o.config_path, passes, overrides);
  const PipelineConfig& config = p.config;
  spdlog::info("config {} ({} pass{}, run id {})", o.config_path, config.passes.size(), config.passes.size() == 1 ? "" : "es", config.hash);
  if (!o.dry_run) {
    refuse_existing_output(o.output_path, o.force);
    refuse_unsafe_report_path(o);
  }

  LoadOptions load;
  load.ln_x_eps = o.ln_x_eps;
  p.model = load_model(o.model_path, load);
  p.model_xxh64 = file_xxh64(o.model_path);
  const Model& model = p.model;
  spdlog::info("model {}: RWKV {}, {} layers x {}, {:.2f} M parameters", o.model_path, arch_name(model.arch),
               model.dims.n_layer, model.dims.n_embd, model.parameter_count() / 1e6);
  p.dense_fp32_bytes = model.parameter_count() * 4;
  // The passes' model is made after calibration, from the dense model's own tensors
  // (run_compress); planning needs only the shapes.
  p.plan = plan_passes(config, CompressedModel::shapes_of(model));
  for (const std::string& w : p.plan.warnings) spdlog::warn("{}", w);
  if (config.needs_calibration()) p.calibration_text = read_calibration_text(config.calibration);
  return p;
}

// The cache key of the statistics this run's calibration records.
CalibrationCacheKey cache_key_of(const CompressOptions& o, const Prepared& p, const CalibrationTokens& tokens) {
  CalibrationCacheInputs in;
  in.model_xxh64 = p.model_xxh64;
  in.ln_x_eps = o.ln_x_eps;
  in.text_xxh64 = p.calibration_text->xxh64;
  in.tokens_xxh64 = tokens.xxh64;
  in.calibration = p.config.calibration;
  in.projections = calibrated_projections(p.model);
  return calibration_cache_key(in);
}

CompressPlanSummary summarize_plan(const CompressOptions& o, const Prepared& p) {
  CompressPlanSummary s;
  const CalibrationText* text = p.calibration_text ? &*p.calibration_text : nullptr;
  const CalibrationTokens tokens = text ? calibration_tokens(p.model, text->text) : CalibrationTokens{};
  s.size = compact_file_size(p.plan.model,
                             file_metadata_of(p.config, provenance_of(o, p.model_xxh64, p.config, text, tokens.count)));
  if (text && !o.calibration_cache_dir.empty()) {
    // Whether the entry exists; whether it reads back is found out by the run.
    s.calibration_cache_path = calibration_cache_path(o.calibration_cache_dir, cache_key_of(o, p, tokens).key);
    s.calibration_cache_hit = std::filesystem::exists(s.calibration_cache_path);
  }
  s.header_slack_bytes = p.plan.header_slack_bytes;
  s.unknowns = p.plan.unknowns;
  s.dense_fp32_bytes = p.dense_fp32_bytes;
  if (p.config.needs_calibration()) {
    s.calibration_bytes = estimate_calibration_bytes(p.model, calibrated_projections(p.model), p.config.calibration);
  }
  // Peak memory: the dense model, its FP32 working copy, and the calibration statistics.
  s.peak_memory_bytes = 2 * p.dense_fp32_bytes + s.calibration_bytes;
  return s;
}

void print_dry_run(const CompressPlanSummary& s, const PipelineConfig& config) {
  if (!s.unknowns.empty()) {
    std::string why;
    for (const std::string& u : s.unknowns) why += (why.empty() ? "" : "; ") + u;
    std::printf("planned_file_bytes      unknown (%s)\n", why.c_str());
  } else if (s.header_slack_bytes > 0) {
    std::printf("planned_file_bytes      %lld .. %lld (%s; dense FP32 %s; tensors exact, the header holds measured "
                "numbers)\n",
                (long long)s.size.file_bytes, (long long)(s.size.file_bytes + s.header_slack_bytes),
                mib(s.size.file_bytes).c_str(), mib(s.dense_fp32_bytes).c_str());
  } else {
    std::printf("planned_file_bytes      %lld (%s; dense FP32 %s)\n", (long long)s.size.file_bytes,
                mib(s.size.file_bytes).c_str(), mib(s.dense_fp32_bytes).c_str());
  }
  std::printf("planned_peak_memory     %s (upper estimate: dense FP32 x2 + calibration statistics %s)\n", mib(s.peak_memory_bytes).c_str(),
              mib(s.calibration_bytes).c_str());
  if (!s.calibration_cache_path.empty()) {
    std::printf("calibration_cache       %s (%s)\n", s.calibration_cache_hit ? "hit" : "miss",
                s.calibration_cache_path.c_str());
  }
  std::printf("passes                  %zu (%s)\n", config.passes.size(), config.hash.c_str());
}

// The statistics every pass that needs calibration shares, and how they were obtained (the
// report's "calibration" object).
struct CalibrationOutcome {
  CalibrationData data;
  std::string cache = "none";  // "none" (no pass needs calibration), "off", "hit", "miss"
  std::string key;             // the cache key, when the cache is on
  double seconds = 0;
};

// Calibration, once, for every pass that needs it: computed, or through the cache directory.
CalibrationOutcome calibrate(const CompressOptions& o, const Prepared& p) {
  CalibrationOutcome out;
  if (!p.config.needs_calibration()) return out;
  const auto t0 = std::chrono::steady_clock::now();
  const auto& c = p.config.calibration;
  const CalibrationText& text = *p.calibration_text;
  CalibrationRequest req;
  req.text = text.text;
  req.threads = o.threads;
  req.max_samples = c.samples;
  req.projections = calibrated_projections(p.model);
  spdlog::info("calibration: {} bytes of {} from offset {}", text.text.size(), text.path, c.offset);
  if (o.calibration_cache_dir.empty()) {
    out.data = run_calibration(p.model, req);
    out.cache = "off";
  } else {
    const CalibrationTokens tokens = calibration_tokens(p.model, text.text);
    const CalibrationCacheKey key = cache_key_of(o, p, tokens);
    CachedCalibration cached =
        calibration_through_cache(o.calibration_cache_dir, key, calibration_shape(p.model, req.projections, tokens.count, c.samples),
                                  [&] { return run_calibration(p.model, req); });
    out.data = std::move(cached.data);
    out.cache = cached.hit ? "hit" : "miss";
    out.key = key.key;
  }
  out.seconds = seconds_since(t0);
  return out;
}

// Frees the parts of `calibration` that none of passes[first, end) reads.
void free_calibration_unused_from(const std::vector<PassSpec>& passes, size_t first, CalibrationData& calibration) {
  CalibrationUse later;
  for (size_t i = first; i < passes.size(); ++i) {
    const CalibrationUse u = passes[i].pass->calibration_use();
    later.input_moments |= u.input_moments;
    later.ffn_key_inputs |= u.ffn_key_inputs;
    later.head_inputs |= u.head_inputs;
  }
  if (!later.input_moments) calibration.input_second_moment.clear();
  if (!later.ffn_key_inputs) std::vector<CalibrationData::Rows>().swap(calibration.ffn_key_inputs);
  if (!later.head_inputs) calibration.head_inputs.resize(0, 0);
}

// Runs every pass in order on the model, logging each row as it completes; returns the
// report rows. Calibration data is freed as soon as no later pass reads it.
nlohmann::ordered_json run_passes(Prepared& p, CalibrationData* calibration, int threads, StageMeter& meter) {
  const PipelineConfig& config = p.config;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  if (calibration) free_calibration_unused_from(config.passes, 0, *calibration);
  int index = 0;
  for (const PassSpec& spec : config.passes) {
    ++index;
    meter.next("pass " + std::to_string(index) + " " + spec.type);
    const auto t0 = std::chrono::steady_clock::now();
    PassContext ctx{p.cm, calibration, config.calibration.seed, threads, {}, {}};
    const std::string label =
        "pass " + std::to_string(index) + "/" + std::to_string(config.passes.size()) + " " + spec.type;
    std::unique_ptr<ProgressLine> progress = std::make_unique<ProgressLine>(label, 0);
    int64_t row_no = 0, rows_total = 0;
    ctx.on_start = [&](int64_t n) {
      rows_total = n;
      progress->clear();
      progress = std::make_unique<ProgressLine>(label, n);
    };
    ctx.on_row = [&](const PassReportRow& r) {
      ++row_no;
      progress->clear();
      spdlog::info("[{}] {}", label, row_line(r, row_no, rows_total));
      progress->update(row_no, "tensors done");
    };
    const std::vector<PassReportRow> result = spec.pass->run(ctx);
    progress->clear();
    for (const PassReportRow& r : result) rows.push_back(row_json(spec.type, r));
    spdlog::info("pass {}/{} {} done: {} tensors in {:.2f} s", index, config.passes.size(), spec.type, result.size(),
                 seconds_since(t0));
    if (calibration) free_calibration_unused_from(config.passes, static_cast<size_t>(index), *calibration);
  }
  return rows;
}

// The compact file and the JSON report.
void write_outputs(const CompressOptions& o, const Prepared& p, const CalibrationOutcome& calibration,
                   nlohmann::ordered_json rows, std::chrono::steady_clock::time_point t_start, StageMeter& meter) {
  const PipelineConfig& config = p.config;
  const int64_t dense_fp32_bytes = p.dense_fp32_bytes;
  const CalibrationText* text = p.calibration_text ? &*p.calibration_text : nullptr;
  const nlohmann::ordered_json provenance = provenance_of(o, p.model_xxh64, config, text, calibration.data.tokens);
  meter.next("write");
  write_compact(p.cm, o.output_path, file_metadata_of(config, provenance));
  meter.finish();
  const uint64_t out_bytes = file_size_or_throw(o.output_path);
  const double ratio = dense_fp32_bytes / static_cast<double>(out_bytes);
  // An elastic file holds several forms of each matrix and may be larger than the dense model.
  spdlog::info("wrote {}: {} ({:.2f}x {} than dense FP32)", o.output_path, mib(static_cast<int64_t>(out_bytes)),
               ratio >= 1 ? ratio : 1 / ratio, ratio >= 1 ? "smaller" : "larger");

  nlohmann::ordered_json report = {{"schema_version", 1},
                                   {"output", o.output_path},
                                   {"file_bytes", out_bytes},
                                   {"dense_fp32_bytes", dense_fp32_bytes},
                                   {"config", config.resolved},
                                   {"provenance", provenance},
                                   {"tensors", std::move(rows)},
                                   {"calibration", {{"cache", calibration.cache},
                                                    {"key", calibration.key.empty() ? nlohmann::ordered_json()
                                                                                    : nlohmann::ordered_json(calibration.key)},
                                                    {"seconds", calibration.seconds}}},
                                   {"seconds", seconds_since(t_start)},
                                   {"peak_rss_bytes", meter.peak_rss_bytes()},
                                   {"stages", meter.to_json()}};
  const std::string report_path = report_path_of(o);
  write_file_atomically(report_path, report.dump(2) + "\n");
  spdlog::info("report: {}", report_path);
}

}  // namespace

std::string file_xxh64(const std::string& path) {
  InputFile f(path);
  XXH64_state_t* st = XXH64_createState();
  XXH64_reset(st, 0);
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t off = 0; off < f.size(); off += buf.size()) {
    const uint64_t n = std::min<uint64_t>(buf.size(), f.size() - off);
    f.read_at(off, buf.data(), n, "the file");
    XXH64_update(st, buf.data(), n);
  }
  const uint64_t h = XXH64_digest(st);
  XXH64_freeState(st);
  return hex64(h);
}

CompressPlanSummary plan_compress(const CompressOptions& options, const PassRegistry& passes) {
  CompressOptions o = options;
  o.dry_run = true;
  return summarize_plan(o, prepare(o, passes));
}

int run_compress(const CompressOptions& o, const PassRegistry& passes) {
  const auto t_start = std::chrono::steady_clock::now();
  StageMeter meter("load");
  Prepared p = prepare(o, passes);
  if (o.dry_run) {
    print_dry_run(summarize_plan(o, p), p.config);
    return 0;
  }
  meter.next("calibration");
  CalibrationOutcome calibration = calibrate(o, p);
  // Only calibration reads the dense model's values: the passes' model takes them over, so
  // the weights are never held twice (0.77 GB at the 0.1B shape).
  p.cm = CompressedModel::from_dense(std::move(p.model));
  p.model.tensors.clear();
  nlohmann::ordered_json rows = run_passes(p, p.config.needs_calibration() ? &calibration.data : nullptr, o.threads, meter);
  write_outputs(o, p, calibration, std::move(rows), t_start, meter);
  return 0;
}

}  // namespace rwkvlite
