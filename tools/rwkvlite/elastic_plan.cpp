#include "tools/rwkvlite/elastic_plan.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/model.h"
#include "runtime/format/layout.h"
#include "runtime/store/compact_model.h"
#include "tools/common/json_output.h"
#include "tools/rwkvlite/cli_common.h"

namespace rwkvlite::cli {
namespace {

using nlohmann::ordered_json;

struct Part {
  std::string name;  // "layer 3", "head", ...
  bool streamed = false;
  int64_t bytes = 0;
  double cost = 0;
  std::map<std::string, int> fidelities;
};

// The chosen forms grouped by layer (then the parts outside the layers), in the file's order.
std::vector<Part> parts_of(const ElasticSelection& s) {
  std::vector<Part> parts;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < s.meta.items.size(); ++i) {
    const layout::ElasticItem& item = s.meta.items[i];
    const layout::ElasticChoice& c = item.choices[s.chosen[i]];
    const std::optional<int64_t> layer = layout::layer_index(item.name);
    const std::string name = layer ? "layer " + std::to_string(*layer) : component_of(item.name);
    auto [it, added] = index.try_emplace(name, parts.size());
    if (added) parts.push_back({name, layer && s.streaming && *layer >= s.streaming->first_streamed_layer, 0, 0, {}});
    Part& p = parts[it->second];
    p.bytes += c.bytes;
    p.cost += c.cost;
    p.fidelities[c.fidelity]++;
  }
  return parts;
}

std::string fidelity_list(const std::map<std::string, int>& counts) {
  std::string out;
  for (const auto& [f, n] : counts) out += (out.empty() ? "" : ", ") + std::to_string(n) + "x " + f;
  return out;
}

void print(const std::string& path, const ElasticSelection& s, const std::vector<Part>& parts, std::FILE* out) {
  const ordered_json j = s.to_json();
  std::fprintf(out, "%s: %s of a %s budget (%.1f%% of dense FP16), predicted %+.2f%% bits/byte\n", path.c_str(),
               human_bytes(static_cast<double>(s.planned_bytes())).c_str(),
               human_bytes(static_cast<double>(*s.budget_bytes)).c_str(),
               100.0 * static_cast<double>(s.planned_bytes()) / static_cast<double>(s.meta.dense_fp16_bytes),
               j["predicted_increase_percent"].get<double>());
  std::fprintf(out, "%-10s %-9s %12s %14s  %s\n", "part", "held", "bytes", "delta bits/B", "forms");
  for (const Part& p : parts)
    std::fprintf(out, "%-10s %-9s %12lld %14.5f  %s\n", p.name.c_str(), p.streamed ? "streamed" : "resident",
                 static_cast<long long>(p.bytes), p.cost, fidelity_list(p.fidelities).c_str());
  std::fprintf(out, "%-10s %-9s %12lld %14s  (norms, mixes and other small tensors in FP32; matrices stored once)\n",
               "fixed", "resident", static_cast<long long>(s.fixed_bytes), "");
  if (s.streaming) {
    std::fprintf(out, "streaming: layers %lld+ through two slots of %lld bytes, %lld bytes read a token\n",
                 static_cast<long long>(s.streaming->first_streamed_layer),
                 static_cast<long long>(s.streaming->slot_bytes),
                 static_cast<long long>(s.streaming->streamed_bytes_per_token));
  }
  if (s.predicted_speed) {
    const SpeedPrediction& p = *s.predicted_speed;
    std::fprintf(out, "predicted speed: %.0f tokens/s (%.3f ms a token: %.3f computing, %.3f reading, stall %.2f)\n",
                 p.tokens_per_second(), 1e3 * p.seconds_per_token, 1e3 * p.compute_seconds, 1e3 * p.read_seconds,
                 p.stall_fraction());
  }
}

}  // namespace

int run_elastic_plan(const std::string& path, const tools::BudgetArgs& budget, int threads,
                     const std::string& json_path) {
  RuntimeOptions runtime;
  runtime.threads = threads;
  budget.apply(runtime);
  if (!runtime.memory_budget) throw UsageError("planning an elastic file needs --memory-budget");
  CompactEngine engine = load_compact_engine(path, runtime);
  if (!engine.elastic)
    throw UsageError("'" + path + "' is a compact file but not an elastic one: plan reads a sensitivity profile "
                     "(rwkvlite profile --json) or an elastic file (made by the elastic pass)");
  const ElasticSelection& s = *engine.elastic;
  const std::vector<Part> parts = parts_of(s);
  if (json_path != "-") print(path, s, parts, stdout);
  if (!json_path.empty()) {
    ordered_json layers = ordered_json::array();
    for (const Part& p : parts)
      layers.push_back({{"part", p.name}, {"streamed", p.streamed}, {"bytes", p.bytes},
                        {"predicted_delta_bits_per_byte", p.cost}, {"fidelities", p.fidelities}});
    ordered_json j;
    j["file"] = path;
    j["threads"] = threads;
    j["memory_budget_bytes"] = *s.budget_bytes;
    j["io_bandwidth_bytes_per_second"] = runtime.stream_options.io_bandwidth_bytes_per_second
                                             ? ordered_json(*runtime.stream_options.io_bandwidth_bytes_per_second)
                                             : ordered_json();
    j["pipelined"] = runtime.stream_options.pipelined;
    j["elastic"] = s.to_json();
    j["parts"] = std::move(layers);
    tools::write_json(json_path, j);
  }
  return 0;
}

}  // namespace rwkvlite::cli
