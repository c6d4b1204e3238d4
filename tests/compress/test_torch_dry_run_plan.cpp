// The dry run's plan against the written file for the shipped configs with LibTorch passes
// (sparsity_predictor, cluster_head): the data section byte for byte; the whole file within
// the header slack the plan states for the measured sparsity thresholds (exactly without them).
#include "compress/algo/torch_parts.h"
#include "tests/compress/dry_run_plan_check.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

TEST_CASE("dry run: the planned size of every shipped LibTorch config is the size written", "[dry_run][model][torch]") {
  register_torch_parts();
  const std::vector<std::string> configs = shipped_configs(true);
  REQUIRE(configs.size() >= 2);
  for (const std::string& c : configs) check_plan_equals_written(c);
}
