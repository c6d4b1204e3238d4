#include "runtime/store/elastic_selection.h"

#include "runtime/core/error.h"
#include "runtime/format/layout.h"
#include "runtime/plan/budget_planner.h"
#include "runtime/plan/stream_planner.h"

namespace rwkvlite {

nlohmann::ordered_json ElasticSelection::to_json() const {
  nlohmann::ordered_json counts = nlohmann::ordered_json::object(), matrices = nlohmann::ordered_json::object();
  for (size_t i = 0; i < meta.items.size(); ++i) {
    const std::string& f = meta.items[i].choices[chosen[i]].fidelity;
    counts[f] = counts.value(f, 0) + 1;
    matrices[meta.items[i].name] = f;
  }
  nlohmann::ordered_json j;
  j["budget_bytes"] = budget_bytes ? nlohmann::ordered_json(*budget_bytes) : nlohmann::ordered_json();
  j["fixed_bytes"] = fixed_bytes;
  j["elastic_bytes"] = elastic_bytes;
  j["planned_bytes"] = planned_bytes();
  j["dense_fp16_bytes"] = meta.dense_fp16_bytes;
  j["predicted_kl_bits_per_byte"] = predicted_kl_bits_per_byte;
  j["predicted_increase_percent"] =
      meta.base_bits_per_byte > 0 ? 100.0 * predicted_kl_bits_per_byte / meta.base_bits_per_byte : 0.0;
  j["method"] = meta.method;
  if (streaming) {
    j["streaming"] = {{"first_streamed_layer", streaming->first_streamed_layer},
                      {"slot_bytes", streaming->slot_bytes},
                      {"streamed_bytes_per_token", streaming->streamed_bytes_per_token}};
  } else {
    j["streaming"] = nullptr;
  }
  j["predicted_speed"] = predicted_speed ? predicted_speed->to_json() : nlohmann::ordered_json();
  j["fidelity_counts"] = std::move(counts);
  j["matrices"] = std::move(matrices);
  return j;
}

ElasticSelection select_elastic_forms(const format::CompactFile& file, const layout::ElasticMeta& meta,
                                      int64_t fixed_bytes, std::optional<int64_t> budget_bytes, int64_t n_layer,
                                      bool stream) {
  const std::string where = "'" + file.path() + "'";
  std::set<std::string> listed;
  std::vector<PlanItem> items;
  for (const layout::ElasticItem& item : meta.items) {
    PlanItem p{.name = item.name, .choices = {}};
    for (const layout::ElasticChoice& c : item.choices) {
      int64_t stored = 0;
      for (const std::string& t : c.tensors) {
        const format::TensorInfo* info = file.find(t);
        if (!info) throw InputError(where + ": elastic item '" + item.name + "' lists tensor '" + t + "', which the file lacks");
        if (layout::elastic_logical(t).empty()) throw InputError(where + ": elastic tensor '" + t + "' has no name before '@'");
        stored += static_cast<int64_t>(info->nbytes);
        listed.insert(t);
      }
      if (stored != c.bytes)
        throw InputError(where + ": elastic item '" + item.name + "' choice '" + c.fidelity + "' records " +
                         std::to_string(c.bytes) + " bytes, its tensors hold " + std::to_string(stored));
      p.choices.push_back({c.fidelity, c.bytes, c.cost});
    }
    items.push_back(std::move(p));
  }
  for (const format::TensorInfo& t : file.tensors()) {
    if (layout::is_elastic_variant(t.name) && !listed.contains(t.name))
      throw InputError(where + ": stored form '" + t.name + "' belongs to no elastic item");
  }

  ElasticSelection s;
  s.budget_bytes = budget_bytes;
  s.fixed_bytes = fixed_bytes;
  s.meta = meta;
  if (stream && !budget_bytes) throw UsageError("streaming layers needs a memory budget (--memory-budget)");
  if (!budget_bytes) {
    // No budget: the largest form of each matrix (the most faithful one the file holds).
    for (const PlanItem& item : items) {
      size_t best = 0;
      for (size_t c = 1; c < item.choices.size(); ++c)
        if (item.choices[c].bytes > item.choices[best].bytes) best = c;
      s.chosen.push_back(best);
      s.elastic_bytes += item.choices[best].bytes;
      s.predicted_kl_bits_per_byte += item.choices[best].cost;
    }
    return s;
  }
  const Plan plan = plan_within_bytes(items, *budget_bytes - fixed_bytes);
  if (plan.feasible && !stream) {
    for (int c : plan.chosen) s.chosen.push_back(static_cast<size_t>(c));
    s.elastic_bytes = plan.bytes;
    s.predicted_kl_bits_per_byte = plan.cost;
    return s;
  }
  // Holding every matrix does not fit (or streaming was asked for): stream layers.
  StreamPlanRequest request{.items = items, .layer_of = {}, .n_layer = n_layer, .fixed_bytes = fixed_bytes,
                            .budget_bytes = *budget_bytes, .slots = 2};
  for (const layout::ElasticItem& item : meta.items) {
    const std::optional<int64_t> layer = layout::layer_index(item.name);
    if (layer && *layer >= n_layer) throw InputError(where + ": elastic item '" + item.name + "' is beyond the model's layers");
    request.layer_of.push_back(layer.value_or(-1));
  }
  const StreamPlan sp = plan_streaming(request);
  if (!sp.feasible) {
    throw ResourceError(where + ": a memory budget of " + std::to_string(*budget_bytes) +
                        " bytes is below what this file needs at its smallest: " + std::to_string(sp.minimum_bytes) +
                        " bytes, streaming every layer at its smallest forms through two slots (" +
                        std::to_string(fixed_bytes) +
                        " of them not elastic: norms, mixes and other small tensors in FP32, and any matrix stored once)");
  }
  for (int c : sp.chosen) s.chosen.push_back(static_cast<size_t>(c));
  s.elastic_bytes = sp.resident_bytes - fixed_bytes;
  s.predicted_kl_bits_per_byte = sp.cost;
  s.streaming = StreamingPlan{sp.preload_layers, sp.slot_bytes, sp.streamed_bytes_per_token};
  return s;
}

void apply_elastic_selection(format::CompactFile& file, const ElasticSelection& selection) {
  std::map<std::string, std::string> renamed;
  std::set<std::string> hide;
  for (size_t i = 0; i < selection.meta.items.size(); ++i) {
    const layout::ElasticItem& item = selection.meta.items[i];
    for (size_t c = 0; c < item.choices.size(); ++c) {
      for (const std::string& t : item.choices[c].tensors) {
        if (c == selection.chosen[i]) renamed[t] = layout::elastic_logical(t);
        else hide.insert(t);
      }
    }
  }
  file.select_tensors(renamed, hide);
}

}  // namespace rwkvlite
