// The dry run's plan is the file the run writes: for every shipped config without LibTorch
// passes, the planned size equals the compact file's size, byte for byte (tiny v5.2 model,
// 20000 calibration bytes). The LibTorch configs: test_torch_dry_run_plan.cpp.
#include "tests/compress/dry_run_plan_check.h"

using namespace rwkvlite::test;

TEST_CASE("dry run: the planned size of every shipped config is the size written", "[dry_run][model]") {
  const std::vector<std::string> configs = shipped_configs(false);
  REQUIRE(configs.size() >= 5);
  for (const std::string& c : configs) check_plan_equals_written(c);
}
