#include "runtime/plan/stream_planner.h"

#include <algorithm>
#include <limits>

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

constexpr int kCapSteps = 96;  // caps S tried per preload count, evenly spaced

int64_t smallest_bytes(const PlanItem& item) {
  int64_t least = std::numeric_limits<int64_t>::max();
  for (const PlanChoice& c : item.choices) least = std::min(least, c.bytes);
  return least;
}

// One candidate (K, S): every streamed layer planned within S, the rest within what remains.
StreamPlan evaluate(const StreamPlanRequest& r, const std::vector<std::vector<size_t>>& by_layer,
                    const std::vector<size_t>& non_layer, int64_t preload, int64_t cap) {
  StreamPlan p;
  p.preload_layers = preload;
  p.chosen.assign(r.items.size(), 0);
  int64_t slot = 0, streamed = 0;
  double cost = 0;
  for (int64_t l = preload; l < r.n_layer; ++l) {
    std::vector<PlanItem> layer;
    for (size_t i : by_layer[static_cast<size_t>(l)]) layer.push_back(r.items[i]);
    const Plan lp = plan_within_bytes(layer, cap);
    if (!lp.feasible) return p;
    for (size_t k = 0; k < layer.size(); ++k) p.chosen[by_layer[static_cast<size_t>(l)][k]] = lp.chosen[k];
    slot = std::max(slot, lp.bytes);
    streamed += lp.bytes;
    cost += lp.cost;
  }
  std::vector<size_t> resident = non_layer;
  for (int64_t l = 0; l < preload; ++l)
    resident.insert(resident.end(), by_layer[static_cast<size_t>(l)].begin(), by_layer[static_cast<size_t>(l)].end());
  std::vector<PlanItem> rest;
  for (size_t i : resident) rest.push_back(r.items[i]);
  const int64_t room = r.budget_bytes - r.fixed_bytes - r.slots * slot;
  const Plan rp = plan_within_bytes(rest, room);
  if (!rp.feasible) return p;
  for (size_t k = 0; k < rest.size(); ++k) p.chosen[resident[k]] = rp.chosen[k];
  p.feasible = true;
  p.slot_bytes = slot;
  p.streamed_bytes_per_token = streamed;
  p.resident_bytes = r.fixed_bytes + rp.bytes + r.slots * slot;
  p.cost = cost + rp.cost;
  return p;
}

}  // namespace

StreamPlan plan_streaming(const StreamPlanRequest& r) {
  if (r.layer_of.size() != r.items.size()) throw UsageError("stream planner: layer_of and items differ in length");
  if (r.slots < 1) throw UsageError("stream planner: slots must be >= 1");
  std::vector<std::vector<size_t>> by_layer(static_cast<size_t>(std::max<int64_t>(r.n_layer, 0)));
  std::vector<size_t> non_layer;
  for (size_t i = 0; i < r.items.size(); ++i) {
    const int64_t l = r.layer_of[i];
    if (l < -1 || l >= r.n_layer) throw UsageError("stream planner: item '" + r.items[i].name + "' has layer out of range");
    (l < 0 ? non_layer : by_layer[static_cast<size_t>(l)]).push_back(i);
  }
  // The least any plan needs: nothing preloaded, every form at its smallest.
  int64_t least_slot = 0, least = r.fixed_bytes;
  for (const auto& layer : by_layer) {
    int64_t bytes = 0;
    for (size_t i : layer) bytes += smallest_bytes(r.items[i]);
    least_slot = std::max(least_slot, bytes);
  }
  for (size_t i : non_layer) least += smallest_bytes(r.items[i]);
  least += r.slots * least_slot;

  StreamPlan best;
  best.minimum_bytes = least;
  if (r.budget_bytes < least) return best;
  for (int64_t preload = r.n_layer - 1; preload >= 0; --preload) {
    // Caps from the smallest the streamed layers allow to the most the budget leaves for slots.
    int64_t lo = 0;
    for (int64_t l = preload; l < r.n_layer; ++l) {
      int64_t bytes = 0;
      for (size_t i : by_layer[static_cast<size_t>(l)]) bytes += smallest_bytes(r.items[i]);
      lo = std::max(lo, bytes);
    }
    const int64_t hi = (r.budget_bytes - r.fixed_bytes) / r.slots;
    if (hi < lo) continue;
    for (int step = 0; step <= kCapSteps; ++step) {
      const int64_t cap = lo + (hi - lo) * step / kCapSteps;
      StreamPlan p = evaluate(r, by_layer, non_layer, preload, cap);
      // Strictly better only: ties keep more preloaded layers (less to read per token) and the
      // smaller cap, which makes the choice deterministic.
      if (p.feasible && (!best.feasible || p.cost < best.cost)) best = std::move(p);
    }
  }
  best.minimum_bytes = least;
  return best;
}

}  // namespace rwkvlite
