#include "compress/pipeline/pipeline.h"

#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "converters/model_io.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/core/resource_usage.h"
#include "runtime/core/version.h"
#include "runtime/format/layout.h"
#include "runtime/eval/text_source.h"
#include "runtime/core/progress.h"
#include "compress/pipeline/calibration.h"
#include "compress/pipeline/compact_export.h"
#include "compress/pipeline/config.h"

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

int run_compress(const CompressOptions& o, const PassRegistry& passes) {
  const auto t_start = std::chrono::steady_clock::now();
  std::vector<std::string> overrides = o.overrides;
  if (o.seed) overrides.push_back("calibration.seed=" + std::to_string(*o.seed));
  PipelineConfig config = load_pipeline_config(o.config_path, passes, overrides);
  spdlog::info("config {} ({} passes, run id {})", o.config_path, config.passes.size(), config.hash);
  if (!o.dry_run) refuse_existing_output(o.output_path, o.force);

  LoadOptions load;
  load.ln_x_eps = o.ln_x_eps;
  const Model model = load_model(o.model_path, load);
  spdlog::info("model {}: RWKV {}, {} layers x {}, {:.2f} M parameters", o.model_path, arch_name(model.arch),
               model.dims.n_layer, model.dims.n_embd, model.parameter_count() / 1e6);
  CompressedModel cm = CompressedModel::from_dense(model);
  const int64_t dense_fp32_bytes = model.parameter_count() * 4;

  for (const PassSpec& spec : config.passes) spec.pass->validate(cm);
  if (o.dry_run) {
    int64_t planned = planned_compact_bytes(cm);
    for (const PassSpec& spec : config.passes) planned += spec.pass->planned_bytes_delta(cm);
    // Peak memory: the dense model, its FP32 working copy, and (with calibration) one D x D
    // double matrix per recorded projection plus the sampled activations (L + 1 rows of D
    // floats per sampled token).
    int64_t calib = 0;
    if (config.needs_calibration()) {
      for (const auto& [name, t] : model.tensors) {
        if (layout::is_calibrated_projection(name)) calib += t.cols() * t.cols() * 8;
      }
      const int64_t samples = std::min(config.calibration.samples, config.calibration.bytes);
      calib += samples * (model.dims.n_layer + 1) * model.dims.n_embd * 4;
    }
    std::printf("planned_file_bytes      %lld (%s; dense FP32 %s)\n", (long long)planned, mib(planned).c_str(),
                mib(dense_fp32_bytes).c_str());
    std::printf("planned_peak_memory     %s (model x2 + calibration statistics %s)\n",
                mib(2 * dense_fp32_bytes + calib).c_str(), mib(calib).c_str());
    std::printf("passes                  %zu (%s)\n", config.passes.size(), config.hash.c_str());
    return 0;
  }

  // Calibration, once, for every pass that needs it.
  CalibrationData calibration;
  std::string calib_hash;
  if (config.needs_calibration()) {
    const auto& c = config.calibration;
    const std::string text_path = c.text_path == "bundled" ? bundled_text_path() : c.text_path;
    std::string text = read_text_range(text_path, static_cast<uint64_t>(c.offset), static_cast<uint64_t>(c.bytes));
    if (c.interleave_zeros) text = interleave_zero_bytes(text);
    calib_hash = hex64(XXH64(text.data(), text.size(), 0));
    CalibrationRequest req;
    req.text = text;
    req.threads = o.threads;
    req.max_samples = c.samples;
    for (const auto& [name, t] : model.tensors) {
      if (layout::is_calibrated_projection(name)) req.projections.insert(name);
    }
    spdlog::info("calibration: {} bytes of {} from offset {}", text.size(), text_path, c.offset);
    calibration = run_calibration(model, req);
  }

  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  int index = 0;
  for (PassSpec& spec : config.passes) {
    ++index;
    const auto t0 = std::chrono::steady_clock::now();
    PassContext ctx{cm, config.needs_calibration() ? &calibration : nullptr, config.calibration.seed, o.threads, {}};
    int row_no = 0;
    ProgressLine progress("pass " + std::to_string(index) + "/" + std::to_string(config.passes.size()) + " " + spec.type,
                          0);
    ctx.on_row = [&](const PassReportRow& r) {
      ++row_no;
      progress.clear();
      spdlog::info("[pass {}/{} {}] {:<32} {:<16} {:>10} -> {:<10} err {:.4f}  {:.2f}s", index, config.passes.size(),
                   spec.type, r.tensor, r.action, mib(r.bytes_before), mib(r.bytes_after), r.error, r.seconds);
      progress.update(row_no, "tensors done");
    };
    const std::vector<PassReportRow> result = spec.pass->run(ctx);
    progress.clear();
    for (const PassReportRow& r : result) {
      rows.push_back({{"pass", spec.type}, {"tensor", r.tensor}, {"action", r.action}, {"bytes_before", r.bytes_before},
                      {"bytes_after", r.bytes_after}, {"error", r.error}, {"seconds", r.seconds}, {"extra", r.extra}});
    }
    cm.pass_records.push_back({{"type", spec.type}, {"settings", spec.pass->settings()}});
    spdlog::info("pass {}/{} {} done: {} tensors in {:.2f} s", index, config.passes.size(), spec.type, result.size(),
                 seconds_since(t0));
  }

  nlohmann::ordered_json provenance = {{"tool", "rwkvlite"},
                                       {"tool_version", RWKVLITE_VERSION},
                                       {"input_file", std::filesystem::path(o.model_path).filename().string()},
                                       {"input_xxh64", file_xxh64(o.model_path)},
                                       {"calibration_text_xxh64", calib_hash},
                                       {"calibration_tokens", calibration.tokens},
                                       {"seed", config.calibration.seed},
                                       {"config_hash", config.hash}};
  nlohmann::ordered_json metadata = {{"passes", cm.pass_records}, {"config", config.resolved}, {"provenance", provenance}};
  write_compact(cm, o.output_path, metadata);
  const uint64_t out_bytes = file_size_or_throw(o.output_path);
  spdlog::info("wrote {}: {} ({:.2f}x smaller than dense FP32)", o.output_path, mib(static_cast<int64_t>(out_bytes)),
               dense_fp32_bytes / static_cast<double>(out_bytes));

  nlohmann::ordered_json report = {{"schema_version", 1},
                                   {"output", o.output_path},
                                   {"file_bytes", out_bytes},
                                   {"dense_fp32_bytes", dense_fp32_bytes},
                                   {"config", config.resolved},
                                   {"provenance", provenance},
                                   {"tensors", rows},
                                   {"seconds", seconds_since(t_start)},
                                   {"peak_rss_bytes", peak_rss_bytes()}};
  const std::string report_path = o.report_path.empty() ? o.output_path + ".report.json" : o.report_path;
  AtomicFile rf(report_path);
  const std::string text = report.dump(2) + "\n";
  rf.write(text.data(), text.size());
  rf.commit();
  spdlog::info("report: {}", report_path);
  return 0;
}

}  // namespace rwkvlite
