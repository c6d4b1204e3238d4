// The memory-budget planner: given items (tensors, later shards) that each can be held in one
// of several ways, each way with a byte size and a predicted accuracy cost, choose one way per
// item so that the total bytes fit a budget and the summed cost is as small as possible (a
// multiple-choice knapsack), or so that the bytes are as few as possible within a cost limit.
//
// Greedy over each item's lower convex hull of (bytes, cost): every item starts at its
// smallest choice, and the upgrade with the largest cost saved per byte added is taken next
// while it fits. On the hull the upgrades of one item come in decreasing order of that rate,
// so the greedy is the exact solution of the relaxed (fractional) problem up to its last
// item, and within one upgrade's bytes of the integral optimum. Choices off the hull (more
// bytes for no less cost, or a worse rate than a larger choice) are never picked.
//
// Pure arithmetic, no model or file: the elastic runtime and `rwkvlite plan` use the same
// code, and compression's mixed precision builds on it. Deterministic: ties go to the lower
// item index, then the smaller choice.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rwkvlite {

struct PlanChoice {
  std::string label;   // e.g. an encoding name
  int64_t bytes = 0;   // resident bytes when chosen (>= 0)
  double cost = 0;     // predicted accuracy cost (bits per byte added); may be negative
};

struct PlanItem {
  std::string name;
  std::vector<PlanChoice> choices;  // at least one
};

struct Plan {
  bool feasible = false;     // the smallest choices fit the budget (or the cost limit was met)
  std::vector<int> chosen;   // index into each item's choices
  int64_t bytes = 0;         // sum of the chosen bytes
  double cost = 0;           // sum of the chosen costs
};

// Minimises the summed cost with bytes <= budget_bytes. When even the smallest choices do not
// fit, returns them with feasible = false. UsageError for an item without choices or a
// negative byte count.
Plan plan_within_bytes(const std::vector<PlanItem>& items, int64_t budget_bytes);

// The fewest bytes whose summed cost is <= max_cost: upgrades in the same order until the cost
// limit is met. feasible = false (and every item at its hull's cheapest-cost choice) when no
// assignment meets it.
Plan plan_within_cost(const std::vector<PlanItem>& items, double max_cost);

}  // namespace rwkvlite
