#include "runtime/plan/budget_planner.h"

#include <algorithm>
#include <numeric>
#include <queue>
#include <tuple>

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

// Indices of an item's choices on the lower convex hull of (bytes, cost), by increasing bytes
// and strictly decreasing cost, starting at the smallest choice (the cheaper-cost one on ties).
std::vector<int> lower_hull(const PlanItem& item) {
  if (item.choices.empty()) throw UsageError("planner: item '" + item.name + "' has no choices");
  std::vector<int> order(item.choices.size());
  std::iota(order.begin(), order.end(), 0);
  for (const auto& c : item.choices)
    if (c.bytes < 0) throw UsageError("planner: item '" + item.name + "' has a choice of negative size");
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const auto &ca = item.choices[static_cast<size_t>(a)], &cb = item.choices[static_cast<size_t>(b)];
    return std::tie(ca.bytes, ca.cost) < std::tie(cb.bytes, cb.cost);
  });
  std::vector<int> hull;
  for (int i : order) {
    const PlanChoice& c = item.choices[static_cast<size_t>(i)];
    if (!hull.empty()) {
      const PlanChoice& last = item.choices[static_cast<size_t>(hull.back())];
      if (c.cost >= last.cost) continue;  // more bytes, no gain: dominated
    }
    // Pop points that lie on or above the segment from their predecessor to c.
    while (hull.size() >= 2) {
      const PlanChoice& a = item.choices[static_cast<size_t>(hull[hull.size() - 2])];
      const PlanChoice& b = item.choices[static_cast<size_t>(hull.back())];
      const double cross = (static_cast<double>(b.bytes - a.bytes)) * (c.cost - a.cost) -
                           (b.cost - a.cost) * static_cast<double>(c.bytes - a.bytes);
      if (cross > 0) break;  // b is strictly below the chord a-c: keep it
      hull.pop_back();
    }
    hull.push_back(i);
  }
  return hull;
}

struct Upgrade {
  double rate;  // cost saved per byte added (> 0)
  size_t item;
  size_t step;  // position in the item's hull being moved to
  bool operator<(const Upgrade& o) const {  // priority_queue: largest rate first, then lowest item
    if (rate != o.rate) return rate < o.rate;
    return item > o.item;
  }
};

class Greedy {
 public:
  explicit Greedy(const std::vector<PlanItem>& items) : items_(items) {
    for (const auto& item : items) hulls_.push_back(lower_hull(item));
    position_.assign(items.size(), 0);
    for (size_t i = 0; i < items.size(); ++i) {
      bytes_ += chosen(i).bytes;
      cost_ += chosen(i).cost;
      push_next(i);
    }
  }

  // Takes upgrades in rate order while accept(bytes the upgrade adds) says so; an upgrade
  // refused with `skip_refused` is dropped and the next tried, else the walk stops.
  template <typename Accept>
  void walk(Accept accept, bool skip_refused) {
    while (!queue_.empty()) {
      const Upgrade u = queue_.top();
      queue_.pop();
      const PlanChoice& from = chosen(u.item);
      const PlanChoice& to = choice(u.item, u.step);
      const int64_t add = to.bytes - from.bytes;
      if (!accept(add)) {
        if (skip_refused) continue;
        return;
      }
      bytes_ += add;
      cost_ += to.cost - from.cost;
      position_[u.item] = u.step;
      push_next(u.item);
    }
  }

  Plan result(bool feasible) const {
    Plan p;
    p.feasible = feasible;
    p.bytes = bytes_;
    p.cost = cost_;
    for (size_t i = 0; i < items_.size(); ++i) p.chosen.push_back(hulls_[i][position_[i]]);
    return p;
  }
  int64_t bytes() const { return bytes_; }
  double cost() const { return cost_; }

 private:
  const PlanChoice& choice(size_t item, size_t step) const {
    return items_[item].choices[static_cast<size_t>(hulls_[item][step])];
  }
  const PlanChoice& chosen(size_t item) const { return choice(item, position_[item]); }
  void push_next(size_t item) {
    const size_t next = position_[item] + 1;
    if (next >= hulls_[item].size()) return;
    const PlanChoice& from = chosen(item);
    const PlanChoice& to = choice(item, next);
    const double add = static_cast<double>(to.bytes - from.bytes);
    // A zero-byte upgrade cannot exist on the hull (equal bytes keep only the cheaper cost).
    queue_.push(Upgrade{(from.cost - to.cost) / add, item, next});
  }

  const std::vector<PlanItem>& items_;
  std::vector<std::vector<int>> hulls_;
  std::vector<size_t> position_;
  std::priority_queue<Upgrade> queue_;
  int64_t bytes_ = 0;
  double cost_ = 0;
};

}  // namespace

Plan plan_within_bytes(const std::vector<PlanItem>& items, int64_t budget_bytes) {
  Greedy greedy(items);
  if (greedy.bytes() > budget_bytes) return greedy.result(false);
  greedy.walk([&](int64_t add) { return greedy.bytes() + add <= budget_bytes; }, /*skip_refused=*/true);
  return greedy.result(true);
}

Plan plan_within_cost(const std::vector<PlanItem>& items, double max_cost) {
  Greedy greedy(items);
  // Stops adding bytes as soon as the limit is met.
  greedy.walk([&](int64_t) { return greedy.cost() > max_cost; }, /*skip_refused=*/false);
  return greedy.result(greedy.cost() <= max_cost);
}

}  // namespace rwkvlite
