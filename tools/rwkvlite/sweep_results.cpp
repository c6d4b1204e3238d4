#include "tools/rwkvlite/sweep_results.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "runtime/core/file_io.h"
#include "tools/common/json_output.h"
#include "tools/rwkvlite/cli_common.h"

namespace rwkvlite::cli {
namespace {

using json = nlohmann::ordered_json;

// Metric columns after the swept keys; the last four vary between identical runs.
const char* const kMetricColumns[] = {"status", "error", "bits_per_byte", "dense_bits_per_byte", "bpb_increase_pct",
                                      "top1_agreement", "kl_mean", "peak_resident_weight_bytes", "file_bytes",
                                      "dense_fp16_bytes", "ratio_to_dense_fp16", "calibration_cache",
                                      "tokens_per_second", "compress_seconds", "eval_seconds"};

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Strings as they are, numbers in shortest round-trip form, null as empty.
std::string cell(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string join_row(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) line += ',';
    line += csv_field(fields[i]);
  }
  return line + "\n";
}

json model_summary(const std::string& model, const std::vector<const json*>& ok_rows) {
  json m = {{"model", model}};
  if (ok_rows.empty()) return m;
  m["dense_bits_per_byte"] = (*ok_rows.front())["dense_bits_per_byte"];
  m["dense_fp16_bytes"] = (*ok_rows.front())["dense_fp16_bytes"];
  json front = json::array();
  for (size_t i : pareto_front(ok_rows)) {
    const json& r = *ok_rows[i];
    front.push_back({{"run_id", r["run_id"]}, {"baseline", r["baseline"]}, {"params", r["params"]},
                     {"bits_per_byte", r["bits_per_byte"]}, {"bpb_increase_pct", r["bpb_increase_pct"]},
                     {"peak_resident_weight_bytes", r["peak_resident_weight_bytes"]},
                     {"ratio_to_dense_fp16", r["ratio_to_dense_fp16"]}});
  }
  m["pareto_front"] = front;
  // The smallest run within 1% of dense bits per byte: the RWKV-Lite criterion.
  const json* best = nullptr;
  for (const json* r : ok_rows) {
    if ((*r)["bpb_increase_pct"].get<double>() > 1.0) continue;
    if (!best || (*r)["peak_resident_weight_bytes"].get<int64_t>() < (*best)["peak_resident_weight_bytes"].get<int64_t>()) {
      best = r;
    }
  }
  m["smallest_within_1pct"] = best ? (*best)["run_id"] : json(nullptr);
  return m;
}

}  // namespace

std::vector<size_t> pareto_front(const std::vector<const json*>& rows) {
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto bytes = [&](size_t i) { return (*rows[i])["peak_resident_weight_bytes"].get<int64_t>(); };
  auto bpb = [&](size_t i) { return (*rows[i])["bits_per_byte"].get<double>(); };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return bytes(a) != bytes(b) ? bytes(a) < bytes(b) : bpb(a) < bpb(b);
  });
  std::vector<size_t> front;
  for (size_t i : order) {
    if (front.empty() || bpb(i) < bpb(front.back())) front.push_back(i);
  }
  return front;
}

SweepOutcome write_sweep_results(const SweepSpec& spec, const std::string& out_dir,
                                 const std::vector<std::optional<json>>& results) {
  std::vector<std::string> header = {"run_id", "model", "baseline", "params"};
  for (const std::string& k : spec.swept_keys) header.push_back(k);
  for (const char* c : kMetricColumns) header.push_back(c);
  std::string csv = join_row(header);

  SweepOutcome outcome;
  json failures = json::array();
  std::vector<std::string> models;
  for (size_t i = 0; i < spec.runs.size(); ++i) {
    const SweepRun& run = spec.runs[i];
    if (std::find(models.begin(), models.end(), run.model) == models.end()) models.push_back(run.model);
    const json r = results[i] ? *results[i] : json{{"status", "missing"}, {"error", "not run yet"}};
    const std::string status = r.value("status", "missing");
    if (status == "ok") {
      ++outcome.ok;
    } else {
      ++(status == "failed" ? outcome.failed : outcome.missing);
      failures.push_back({{"run_id", run.id}, {"model", run.model}, {"params", params_text(run)},
                          {"status", status}, {"error", r.value("error", "")}});
    }
    std::vector<std::string> row = {run.id, run.model, run.baseline, params_text(run)};
    for (const std::string& k : spec.swept_keys) {
      auto p = std::find_if(run.params.begin(), run.params.end(), [&](const SweepParam& x) { return x.key == k; });
      row.push_back(p == run.params.end() ? "" : p->value);
    }
    for (const char* c : kMetricColumns) row.push_back(r.contains(c) ? cell(r[c]) : "");
    csv += join_row(row);
  }

  json per_model = json::array();
  for (const std::string& model : models) {
    std::vector<const json*> ok_rows;
    for (size_t i = 0; i < spec.runs.size(); ++i) {
      if (spec.runs[i].model == model && results[i] && results[i]->value("status", "") == "ok") {
        ok_rows.push_back(&*results[i]);
      }
    }
    per_model.push_back(model_summary(model, ok_rows));
  }
  const json summary = {{"sweep", spec.path},          {"runs", spec.runs.size()}, {"ok", outcome.ok},
                        {"failed", outcome.failed},    {"missing", outcome.missing},
                        {"eval", spec.eval.to_json()}, {"models", per_model},       {"failures", failures}};
  write_file_atomically(out_dir + "/results.csv", csv);
  tools::write_json(out_dir + "/summary.json", summary);

  std::printf("%-16s  %-8s  %-40s  %10s  %8s  %12s  %7s\n", "run_id", "status", "baseline / params", "bits/byte",
              "vs dense", "resident", "x FP16");
  for (size_t i = 0; i < spec.runs.size(); ++i) {
    const SweepRun& run = spec.runs[i];
    const std::string what = run.baseline.empty() ? params_text(run) : "[" + run.baseline + "]";
    if (!results[i] || results[i]->value("status", "") != "ok") {
      std::printf("%-16s  %-8s  %-40s\n", run.id.c_str(), results[i] ? "failed" : "missing", what.c_str());
      continue;
    }
    const json& r = *results[i];
    std::printf("%-16s  %-8s  %-40s  %10.4f  %+7.2f%%  %12s  %6.2fx\n", run.id.c_str(), "ok", what.c_str(),
                r["bits_per_byte"].get<double>(), r["bpb_increase_pct"].get<double>(),
                human_bytes(r["peak_resident_weight_bytes"].get<int64_t>()).c_str(),
                r["ratio_to_dense_fp16"].get<double>());
  }
  return outcome;
}

}  // namespace rwkvlite::cli
