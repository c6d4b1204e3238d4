#include "tools/rwkvlite/sweep_run.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compress/pipeline/config.h"
#include "compress/pipeline/config_toml.h"
#include "compress/pipeline/pipeline.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "tools/common/json_output.h"
#include "tools/common/model_args.h"
#include "tools/common/text_eval.h"

namespace rwkvlite::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The row fields every result has, in the column order of results.csv.
json result_head(const SweepRun& run) {
  json params = json::object();
  for (const SweepParam& p : run.params) params[p.key] = p.value;
  return {{"run_id", run.id}, {"model", run.model}, {"baseline", run.baseline}, {"params", params}};
}

// Compresses (unless the run is the dense model itself) and scores the result; fills `r`.
void compress_and_score(const SweepSpec& spec, const SweepRun& run, const RunPaths& paths, const std::string& out_dir,
                        int threads, const PassRegistry& passes, json& r) {
  std::string scored = run.model;
  double compress_seconds = 0;
  std::string cache = "none";
  int64_t dense_fp16_bytes = 0;  // parameters x 2
  if (!run.config_path.empty()) {
    CompressOptions o;
    o.model_path = run.model;
    o.output_path = paths.model;
    o.config_path = paths.config;
    o.force = true;  // a run killed half-way left no result: its outputs are redone
    o.threads = threads;
    o.report_path = paths.compress_report;
    o.calibration_cache_dir = calibration_cache_dir(out_dir);
    run_compress(o, passes);
    const json report = json::parse(read_all(paths.compress_report));
    compress_seconds = report.at("seconds").get<double>();
    cache = report.contains("calibration") ? report["calibration"].value("cache", "off") : "off";
    dense_fp16_bytes = report.at("dense_fp32_bytes").get<int64_t>() / 2;
    scored = paths.model;
  } else {
    // No compress report to read the parameter count from: the dense baseline counts it itself.
    dense_fp16_bytes = tools::load_dense_model(run.model, NAN).parameter_count() * 2;
  }

  const auto t0 = std::chrono::steady_clock::now();
  tools::ModelArgs model_args;
  model_args.path = scored;
  model_args.threads = threads;
  tools::RunnableModel model = model_args.load_runnable(RuntimeOptions{});
  const auto tokenizer = tokenizer_for(model.vocab, "");
  tools::TextArgs text;
  text.path = spec.eval.text;
  text.offset = spec.eval.offset;
  text.max_bytes = spec.eval.bytes;
  text.interleave_zeros = spec.eval.interleave_zeros;
  const json eval = tools::evaluate_on_text(model_args, model, *tokenizer, text, run.model);
  tools::write_json(paths.eval_report, eval);
  const double eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const double bpb = eval.at("bits_per_byte").get<double>();
  const double dense_bpb = eval.at("reference_bits_per_byte").get<double>();
  const int64_t resident = eval.at("peak_resident_weight_bytes").get<int64_t>();
  r["bits_per_byte"] = bpb;
  r["dense_bits_per_byte"] = dense_bpb;
  r["bpb_increase_pct"] = 100.0 * (bpb - dense_bpb) / dense_bpb;
  r["top1_agreement"] = eval.at("top1_agreement");
  r["kl_mean"] = eval.at("kl_mean");
  r["peak_resident_weight_bytes"] = resident;
  r["file_bytes"] = eval.at("file_bytes");
  r["dense_fp16_bytes"] = dense_fp16_bytes;
  r["ratio_to_dense_fp16"] = static_cast<double>(dense_fp16_bytes) / static_cast<double>(resident);
  r["calibration_cache"] = cache;
  r["tokens_per_second"] = eval.at("tokens_per_second");
  r["compress_seconds"] = compress_seconds;
  r["eval_seconds"] = eval_seconds;
}

}  // namespace

RunPaths run_paths(const std::string& out_dir, const std::string& run_id) {
  const std::string d = (fs::path(out_dir) / "runs" / run_id).string();
  return {d,           d + "/config.toml", d + "/model.rwkvlite", d + "/model.rwkvlite.report.json",
          d + "/eval.json", d + "/log.txt", d + "/result.json"};
}

std::string calibration_cache_dir(const std::string& out_dir) { return (fs::path(out_dir) / "calibration-cache").string(); }

void prepare_run(const SweepRun& run, const std::string& out_dir, const PassRegistry& passes) {
  const RunPaths paths = run_paths(out_dir, run.id);
  fs::create_directories(paths.dir);
  if (run.resolved.is_null()) return;
  json resolved = run.resolved;
  // A calibration text given by a relative path is saved as the absolute path it resolved to.
  const PipelineConfig original = parse_pipeline_config(resolved_config_toml(resolved), run.config_path, passes, {},
                                                        fs::path(run.config_path).parent_path().string());
  if (original.calibration.text_path != "bundled") resolved["calibration"]["text"] = original.calibration.text_path;
  const std::string text = "# rwkvlite sweep run " + run.id + ": " + run.config_path +
                           (run.params.empty() ? "" : " with " + params_text(run)) + "\n" +
                           resolved_config_toml(resolved);
  const PipelineConfig back = parse_pipeline_config(text, paths.config, passes, {}, paths.dir);
  if (back.resolved != resolved) {
    throw Error("internal error: the saved config of run " + run.id + " does not read back as it was resolved",
                kExitInternal);
  }
  if (!fs::exists(paths.config) || read_all(paths.config) != text) write_file_atomically(paths.config, text);
}

json execute_run(const SweepSpec& spec, const SweepRun& run, const std::string& out_dir, int threads,
                 const PassRegistry& passes) {
  const RunPaths paths = run_paths(out_dir, run.id);
  json r = result_head(run);
  r["status"] = "ok";
  r["error"] = "";
  try {
    prepare_run(run, out_dir, passes);
    compress_and_score(spec, run, paths, out_dir, threads, passes, r);
  } catch (const std::exception& e) {
    spdlog::error("run {} failed: {}", run.id, e.what());
    r = failed_result(run, e.what());
  }
  write_result(out_dir, run, r);
  return r;
}

json failed_result(const SweepRun& run, const std::string& error) {
  json r = result_head(run);
  r["status"] = "failed";
  r["error"] = error;
  return r;
}

void write_result(const std::string& out_dir, const SweepRun& run, const json& result) {
  fs::create_directories(run_paths(out_dir, run.id).dir);
  tools::write_json(run_paths(out_dir, run.id).result, result);
}

std::optional<json> read_result(const std::string& out_dir, const SweepRun& run) {
  const std::string path = run_paths(out_dir, run.id).result;
  if (!fs::exists(path)) return std::nullopt;
  json r = json::parse(read_all(path), nullptr, false);
  if (r.is_discarded() || !r.is_object() || r.value("run_id", "") != run.id || !r.contains("status")) {
    spdlog::warn("{}: unreadable result, the run is redone", path);
    return std::nullopt;
  }
  return r;
}

}  // namespace rwkvlite::cli
