// The memory-budget planner against brute force on small instances: it never exceeds the
// budget, its cost is within one upgrade of the optimum (the bound the greedy over convex hulls
// guarantees), and on convex instances where the budget lands on a hull point it is exact.
#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>
#include <random>

#include "runtime/core/error.h"
#include "runtime/plan/budget_planner.h"

using namespace rwkvlite;

namespace {

struct Best {
  double cost = std::numeric_limits<double>::infinity();
  int64_t bytes = std::numeric_limits<int64_t>::max();
};

// Every assignment; `better` decides what counts as the optimum.
template <typename Better>
Best brute_force(const std::vector<PlanItem>& items, Better better) {
  Best best;
  std::vector<size_t> pick(items.size(), 0);
  while (true) {
    int64_t bytes = 0;
    double cost = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      bytes += items[i].choices[pick[i]].bytes;
      cost += items[i].choices[pick[i]].cost;
    }
    if (better(bytes, cost, best)) best = {cost, bytes};
    size_t i = 0;
    while (i < items.size() && ++pick[i] == items[i].choices.size()) pick[i++] = 0;
    if (i == items.size()) return best;
  }
}

std::vector<PlanItem> random_items(std::mt19937& rng, size_t n) {
  std::uniform_int_distribution<int64_t> size(1, 100);
  std::uniform_real_distribution<double> gain(0.0, 1.0);
  std::vector<PlanItem> items;
  for (size_t i = 0; i < n; ++i) {
    PlanItem item{.name = "t" + std::to_string(i), .choices = {}};
    int64_t bytes = size(rng);
    double cost = 5 * gain(rng);
    for (int k = 0; k < 4; ++k) {  // larger and usually (not always) cheaper
      item.choices.push_back({"f" + std::to_string(k), bytes, cost});
      bytes += size(rng);
      cost = std::max(0.0, cost - gain(rng) + 0.1);
    }
    std::shuffle(item.choices.begin(), item.choices.end(), rng);
    items.push_back(item);
  }
  return items;
}

double largest_single_gain(const std::vector<PlanItem>& items) {
  double g = 0;
  for (const auto& item : items) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto& c : item.choices) lo = std::min(lo, c.cost), hi = std::max(hi, c.cost);
    g = std::max(g, hi - lo);
  }
  return g;
}

Plan checked_sums(const std::vector<PlanItem>& items, const Plan& p) {
  int64_t bytes = 0;
  double cost = 0;
  REQUIRE(p.chosen.size() == items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    bytes += items[i].choices[static_cast<size_t>(p.chosen[i])].bytes;
    cost += items[i].choices[static_cast<size_t>(p.chosen[i])].cost;
  }
  CHECK(bytes == p.bytes);
  CHECK(cost == Approx(p.cost).margin(1e-12));
  return p;
}

}  // namespace

TEST_CASE("plan_within_bytes fits the budget and is within one upgrade of the optimum") {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    const auto items = random_items(rng, 5);
    const int64_t budget = std::uniform_int_distribution<int64_t>(50, 900)(rng);
    const Plan p = checked_sums(items, plan_within_bytes(items, budget));
    const Best opt = brute_force(items, [&](int64_t bytes, double cost, const Best& b) {
      return bytes <= budget && cost < b.cost;
    });
    if (opt.bytes == std::numeric_limits<int64_t>::max()) {
      CHECK_FALSE(p.feasible);
      continue;
    }
    INFO("round " << round << " budget " << budget << " greedy " << p.cost << " optimum " << opt.cost);
    REQUIRE(p.feasible);
    CHECK(p.bytes <= budget);
    CHECK(p.cost >= opt.cost - 1e-9);
    CHECK(p.cost <= opt.cost + largest_single_gain(items) + 1e-9);
  }
}

TEST_CASE("plan_within_bytes is exact when the budget is a sum of hull points") {
  // Two items on convex hulls; the budget takes item a's first upgrade (rate 0.1/byte) and
  // item b's first (rate 0.05/byte), not b's second (rate 0.01/byte).
  const std::vector<PlanItem> items = {
      {"a", {{"a0", 10, 3.0}, {"a1", 20, 2.0}, {"a2", 60, 1.9}}},
      {"b", {{"b0", 10, 2.0}, {"b1", 30, 1.0}, {"b2", 80, 0.5}, {"b3", 90, 0.7}}}};
  const Plan p = checked_sums(items, plan_within_bytes(items, 50));
  CHECK(p.feasible);
  CHECK(p.chosen == std::vector<int>{1, 1});
  CHECK(p.bytes == 50);
  CHECK(p.cost == Approx(3.0));
  // b3 (more bytes, higher cost than b2) is never chosen, whatever the budget.
  CHECK(plan_within_bytes(items, 1000).chosen == std::vector<int>{2, 2});
}

TEST_CASE("plan_within_bytes below the smallest choices is infeasible") {
  const std::vector<PlanItem> items = {{"a", {{"a0", 10, 1.0}}}, {"b", {{"b0", 15, 1.0}, {"b1", 5, 2.0}}}};
  const Plan p = plan_within_bytes(items, 14);
  CHECK_FALSE(p.feasible);
  CHECK(p.bytes == 15);  // the smallest: a0 + b1
  CHECK(p.chosen == std::vector<int>{0, 1});
}

TEST_CASE("plan_within_cost meets the limit with no more bytes than one upgrade over the fewest") {
  std::mt19937 rng(11);
  for (int round = 0; round < 200; ++round) {
    const auto items = random_items(rng, 5);
    const double limit = std::uniform_real_distribution<double>(0.0, 12.0)(rng);
    const Plan p = checked_sums(items, plan_within_cost(items, limit));
    const Best opt = brute_force(items, [&](int64_t bytes, double cost, const Best& b) {
      return cost <= limit && bytes < b.bytes;
    });
    if (opt.bytes == std::numeric_limits<int64_t>::max()) {
      CHECK_FALSE(p.feasible);
      continue;
    }
    INFO("round " << round << " limit " << limit << " greedy " << p.bytes << " optimum " << opt.bytes);
    REQUIRE(p.feasible);
    CHECK(p.cost <= limit + 1e-12);
    CHECK(p.bytes >= opt.bytes);
    int64_t widest = 0;  // the largest single upgrade's bytes
    for (const auto& item : items) {
      int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0;
      for (const auto& c : item.choices) lo = std::min(lo, c.bytes), hi = std::max(hi, c.bytes);
      widest = std::max(widest, hi - lo);
    }
    CHECK(p.bytes <= opt.bytes + widest);
  }
}

TEST_CASE("the planner rejects items without choices and negative sizes") {
  CHECK_THROWS_AS(plan_within_bytes({{"a", {}}}, 10), UsageError);
  CHECK_THROWS_AS(plan_within_bytes({{"a", {{"x", -1, 0.0}}}}, 10), UsageError);
}
