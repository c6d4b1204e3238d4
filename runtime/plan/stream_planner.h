// The streaming planner: when a budget is below what holding every matrix resident needs, the
// elastic runtime keeps the first K layers (the preload buffer), the embedding, the head and the
// small tensors resident, and streams the chosen forms of the other layers through two slots of
// S bytes each (runtime/store/layer_stream.h: one layer computes from one slot while the loader
// fills the other). Resident weight bytes are then
//   fixed + (non-layer forms) + (forms of layers < K) + 2 S,   S = the largest streamed layer,
// and this planner chooses K, S and a form per matrix to minimise the summed predicted cost
// within the budget: for each K and each cap S on a grid, every streamed layer gets the least
// costly forms within S (plan_within_bytes over its matrices), and the resident matrices share
// what is left (plan_within_bytes over them). Pure arithmetic, deterministic.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/plan/budget_planner.h"

namespace rwkvlite {

struct StreamPlanRequest {
  std::vector<PlanItem> items;
  std::vector<int64_t> layer_of;  // per item: its layer, or -1 (embedding, head)
  int64_t n_layer = 0;
  int64_t fixed_bytes = 0;        // held whatever the plan (small tensors, matrices stored once)
  int64_t budget_bytes = 0;
  int64_t slots = 2;              // buffers of S bytes the streamed layers pass through
};

struct StreamPlan {
  bool feasible = false;
  std::vector<int> chosen;          // per item, an index into its choices
  int64_t preload_layers = 0;       // K: layers [0, K) resident
  int64_t slot_bytes = 0;           // S: the largest streamed layer's chosen bytes
  int64_t resident_bytes = 0;       // fixed + resident forms + slots * S
  int64_t streamed_bytes_per_token = 0;  // the streamed layers' chosen bytes, read once per token
  double cost = 0;
  int64_t minimum_bytes = 0;        // the least budget any plan fits (K = 0, smallest forms)
};

// UsageError for a malformed request (sizes differ, a layer out of range, slots < 1).
StreamPlan plan_streaming(const StreamPlanRequest& request);

}  // namespace rwkvlite
